import type { Redis } from 'ioredis';

/** Calls per command name (`evalsha`, `client|list`, ...) from INFO commandstats. */
export type CommandCalls = Map<string, number>;

/** What Redis has done so far: its CPU time and every command's calls (commands run inside scripts included). */
export interface RedisSnapshot {
  /** used_cpu_sys + used_cpu_user of INFO cpu, in seconds. */
  cpuSeconds: number;
  commands: CommandCalls;
}

/** What Redis did between two snapshots. */
export interface RedisUsage {
  cpuSeconds: number;
  /** Calls per command name, only those that ran, most called first. */
  commands: CommandCalls;
  /** All calls together. */
  totalCalls: number;
}

/** Parses INFO commandstats lines (`cmdstat_get:calls=12,usec=30,...`) into calls per command name. */
export function parseCommandStats(info: string): CommandCalls {
  const calls: CommandCalls = new Map();
  for (const line of info.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):(.*)$/.exec(line.trim());
    if (!match) continue;
    const field = /(?:^|,)calls=(\d+)/.exec(match[2]);
    if (field) calls.set(match[1], Number(field[1]));
  }
  return calls;
}

/** used_cpu_sys + used_cpu_user of INFO cpu, in seconds (children's CPU, e.g. a fork for a save, excluded). */
export function parseRedisCpuSeconds(info: string): number {
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info);
    if (!match) throw new Error(`INFO has no ${name}`);
    return Number(match[1]);
  };
  return field('used_cpu_sys') + field('used_cpu_user');
}

/**
 * The calls made between `before` and `after`, most called first. `ignore` lists command names the meter
 * itself sends (INFO), so they do not count against the code measured.
 */
export function diffCommandCalls(before: CommandCalls, after: CommandCalls, ignore: readonly string[] = ['info']): CommandCalls {
  const diff: [string, number][] = [];
  for (const [name, calls] of after) {
    const made = calls - (before.get(name) ?? 0);
    if (made > 0 && !ignore.includes(name)) diff.push([name, made]);
  }
  return new Map(diff.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

export function usageBetween(before: RedisSnapshot, after: RedisSnapshot): RedisUsage {
  const commands = diffCommandCalls(before.commands, after.commands);
  return { cpuSeconds: after.cpuSeconds - before.cpuSeconds, commands, totalCalls: [...commands.values()].reduce((sum, calls) => sum + calls, 0) };
}

/** One INFO call (sections cpu and commandstats) on `redis`. */
export async function snapshotRedis(redis: Redis): Promise<RedisSnapshot> {
  const info = await redis.info('cpu', 'commandstats');
  return { cpuSeconds: parseRedisCpuSeconds(info), commands: parseCommandStats(info) };
}
