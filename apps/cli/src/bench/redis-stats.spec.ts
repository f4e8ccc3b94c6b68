import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrivateRedis } from '../mesh/private-redis';
import { diffCommandCalls, parseCommandStats, parseRedisCpuSeconds, snapshotRedis, usageBetween } from './redis-stats';

const COMMANDSTATS = [
  '# Commandstats',
  'cmdstat_evalsha:calls=120,usec=9000,usec_per_call=75.00,rejected_calls=0,failed_calls=1',
  'cmdstat_client|list:calls=7,usec=70,usec_per_call=10.00,rejected_calls=0,failed_calls=0',
  'cmdstat_info:calls=3,usec=30,usec_per_call=10.00,rejected_calls=0,failed_calls=0',
  '',
].join('\r\n');

describe('parseCommandStats', () => {
  it('reads the calls of every command, subcommands included', () => {
    expect(parseCommandStats(COMMANDSTATS)).toEqual(
      new Map([
        ['evalsha', 120],
        ['client|list', 7],
        ['info', 3],
      ]),
    );
  });

  it('ignores other sections and lines', () => {
    expect(parseCommandStats('# CPU\r\nused_cpu_sys:1.5\r\n')).toEqual(new Map());
  });
});

describe('parseRedisCpuSeconds', () => {
  it('adds system and user CPU, not the children', () => {
    expect(parseRedisCpuSeconds('# CPU\r\nused_cpu_sys:1.25\r\nused_cpu_user:2.5\r\nused_cpu_sys_children:9\r\n')).toBeCloseTo(3.75);
  });

  it('throws when a field is missing', () => {
    expect(() => parseRedisCpuSeconds('used_cpu_sys:1')).toThrow(/used_cpu_user/);
  });
});

describe('diffCommandCalls', () => {
  it('keeps the commands that ran, most called first, without the meter’s own INFO', () => {
    const before = new Map([
      ['get', 10],
      ['info', 1],
      ['set', 5],
    ]);
    const after = new Map([
      ['get', 12],
      ['info', 2],
      ['set', 5],
      ['publish', 4],
    ]);
    expect([...diffCommandCalls(before, after)]).toEqual([
      ['publish', 4],
      ['get', 2],
    ]);
  });

  it('totals the calls with the CPU between two snapshots', () => {
    const usage = usageBetween({ cpuSeconds: 1, commands: new Map([['get', 1]]) }, { cpuSeconds: 1.5, commands: new Map([['get', 4], ['set', 2]]) });
    expect(usage).toEqual({ cpuSeconds: 0.5, commands: new Map([['get', 3], ['set', 2]]), totalCalls: 5 });
  });
});

describe('snapshotRedis on a real Redis', () => {
  let server: PrivateRedis;
  let redis: Redis;
  beforeAll(async () => {
    server = await PrivateRedis.start();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis.disconnect();
    await server.stop();
  });

  it('counts the commands a Lua script runs, besides the EVAL itself', async () => {
    const before = await snapshotRedis(redis);
    await redis.eval("redis.call('SET', KEYS[1], 'a'); redis.call('GET', KEYS[1]); return 1", 1, 'bench:spec');
    const usage = usageBetween(before, await snapshotRedis(redis));
    expect(usage.commands).toEqual(
      new Map([
        ['eval', 1],
        ['get', 1],
        ['set', 1],
      ]),
    );
    expect(usage.totalCalls).toBe(3);
    expect(usage.cpuSeconds).toBeGreaterThanOrEqual(0);
  });
});
