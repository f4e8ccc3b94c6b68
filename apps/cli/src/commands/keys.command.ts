import { type Command, InvalidArgumentError } from 'commander';
import { DEFAULT_KEY_PREFIX, TASKS, createRedisKeys, type Task } from '@rsmoe/contracts';
import { Redis } from 'ioredis';
import { ApiKeyRegistry, type ListedApiKey } from '../keys/api-key-registry';

const SECONDS_PER_UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `10/s`, `600/m`, `1000/h`, `5000/d` (or a bare number: per second) as requests per second. */
export function parseRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(?:\/(s|m|h|d))?$/.exec(text.trim());
  const rate = match ? Number(match[1]) / SECONDS_PER_UNIT[match[2] ?? 's']! : NaN;
  if (!(rate > 0)) throw new InvalidArgumentError('expected a rate like 10/s, 600/m or 1000/h (above 0)');
  return rate;
}

function positiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError('expected an integer of at least 1');
  return value;
}

/** `caption,vqa,...` (or `all`): tasks of the gateway. */
export function parseTasks(text: string): Task[] {
  if (text.trim() === 'all') return [...TASKS];
  const tasks = text.split(',').map((task) => task.trim()).filter((task) => task !== '');
  const unknown = tasks.filter((task) => !(TASKS as readonly string[]).includes(task));
  if (tasks.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`unknown task(s) ${unknown.join(', ') || '(none)'}; tasks: ${TASKS.join(', ')} or all`);
  return [...new Set(tasks)] as Task[];
}

/** A rate as the user would write it back. */
function formatRate(perSecond: number): string {
  for (const [unit, seconds] of Object.entries(SECONDS_PER_UNIT)) {
    const count = perSecond * seconds;
    if (Math.abs(count - Math.round(count)) < 1e-9 && count >= 1) return `${Math.round(count)}/${unit}`;
  }
  return `${perSecond}/s`;
}

interface RedisFlags {
  redis: string;
  keyPrefix: string;
}

/** Where `rsmoe keys` writes: the stream is injectable so that tests read what a user would see. */
export interface KeysOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const STD_OUTPUT: KeysOutput = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };

async function withRegistry<T>(flags: RedisFlags, use: (registry: ApiKeyRegistry) => Promise<T>): Promise<T> {
  const redis = new Redis(flags.redis, { maxRetriesPerRequest: 1, connectTimeout: 2_000, lazyConnect: true });
  try {
    await redis.connect();
    return await use(new ApiKeyRegistry(redis, createRedisKeys(flags.keyPrefix)));
  } finally {
    redis.disconnect();
  }
}

function listing(keys: ListedApiKey[]): string {
  if (keys.length === 0) return 'no API keys\n';
  const rows = keys.map((key) => [
    key.name,
    formatRate(key.ratePerSecond),
    String(key.burst),
    `${key.imagesToday}/${key.dailyQuota}`,
    key.tasks.length === TASKS.length ? 'all' : key.tasks.join(','),
    new Date(key.createdAtUnixMs).toISOString(),
  ]);
  const header = ['NAME', 'RATE', 'BURST', 'IMAGES TODAY', 'TASKS', 'CREATED'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/**
 * `rsmoe keys create|list|revoke`: API keys of the gateway (AUTH_MODE=required), straight in its Redis.
 * `--redis` defaults to REDIS_URL, else the local Redis; `--key-prefix` to the mesh's (rsmoe, as `rsmoe start`).
 */
export function registerKeysCommand(program: Command, redisUrlFromEnv: string | undefined, output: KeysOutput = STD_OUTPUT): void {
  const keys = program.command('keys').description('API keys of the gateway: create (the key is shown once), list, revoke');
  const redisOptions = (command: Command): Command =>
    command
      .option('--redis <url>', 'Redis of the mesh (default: REDIS_URL, else redis://127.0.0.1:6379)', redisUrlFromEnv ?? 'redis://127.0.0.1:6379')
      .option('--key-prefix <prefix>', 'key prefix of the mesh (KEY_PREFIX)', DEFAULT_KEY_PREFIX);

  redisOptions(
    keys
      .command('create')
      .description('create a key; it is printed once (only its sha256 is stored)')
      .requiredOption('--name <name>', 'unique name: what `keys list`, logs and metrics show')
      .option('--rate <rate>', 'sustained request rate: 10/s, 600/m, 1000/h', parseRate, 10)
      .option('--burst <n>', 'most requests in one burst (token-bucket size)', positiveInteger, 20)
      .option('--daily-quota <n>', 'images per UTC day (one per inference request; resets at 00:00 UTC)', positiveInteger, 10_000)
      .option('--tasks <list>', `tasks the key may run: ${TASKS.join(',')} or all`, parseTasks, [...TASKS]),
  ).action(async (flags: RedisFlags & { name: string; rate: number; burst: number; dailyQuota: number; tasks: Task[] }) => {
    const { secret } = await withRegistry(flags, (registry) =>
      registry.create({ name: flags.name, ratePerSecond: flags.rate, burst: flags.burst, dailyQuota: flags.dailyQuota, tasks: flags.tasks }),
    );
    output.err(`rsmoe: created API key "${flags.name}"; store it now, it is not shown again:\n`);
    output.out(`${secret}\n`);
  });

  redisOptions(keys.command('list').description('every key: name, rate, burst, images today / daily quota, tasks (never the key)'))
    .option('--json', 'one JSON array')
    .action(async (flags: RedisFlags & { json?: boolean }) => {
      const listed = await withRegistry(flags, (registry) => registry.list());
      output.out(flags.json ? `${JSON.stringify(listed, null, 2)}\n` : listing(listed));
    });

  redisOptions(keys.command('revoke').description('delete a key: the gateway answers 401 to it from its next request').argument('<name>', 'the key’s name')).action(
    async (name: string, flags: RedisFlags) => {
      await withRegistry(flags, (registry) => registry.revoke(name));
      output.err(`rsmoe: revoked API key "${name}"\n`);
    },
  );
}
