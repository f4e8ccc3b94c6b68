import { createHash, randomBytes } from 'node:crypto';
import { TASKS, type Task } from './tasks';

/**
 * API keys: the CLI (`rsmoe keys`) writes them, the gateway reads them. Only the sha256 of a key is stored
 * (its id); the secret is printed once at creation and never kept.
 */

/** What every key starts with: easy to spot in a leaked log or a secret scanner. */
export const API_KEY_SCHEME = 'rsk_';

/** A key's name: what `rsmoe keys` and the metrics' `key` label use (never the secret). */
export const API_KEY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A key's settings as stored in Redis (RedisKeys.apiKeyKey), without the secret. */
export interface ApiKeyRecord {
  /** Unique name (API_KEY_NAME_PATTERN). */
  name: string;
  /** Token-bucket refill rate, in requests per second (may be fractional: 1/m is 1/60). */
  ratePerSecond: number;
  /** Token-bucket size: the most requests in one burst (≥ 1). */
  burst: number;
  /** Images the key may have processed per UTC day (one per inference request). */
  dailyQuota: number;
  /** Tasks the key may run. */
  tasks: Task[];
  createdAtUnixMs: number;
}

/** A new secret: `rsk_` and 32 random bytes in base64url (256 bits). */
export function generateApiKeySecret(): string {
  return `${API_KEY_SCHEME}${randomBytes(32).toString('base64url')}`;
}

/** A key's id: the sha256 of its secret, in hex. It keys the stored record, the bucket, the usage and request owners. */
export function apiKeyId(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The Redis hash fields of a record. */
export function apiKeyRecordFields(record: ApiKeyRecord): Record<string, string> {
  return {
    name: record.name,
    rate: String(record.ratePerSecond),
    burst: String(record.burst),
    dailyQuota: String(record.dailyQuota),
    tasks: record.tasks.join(','),
    createdAtUnixMs: String(record.createdAtUnixMs),
  };
}

/** A record from its Redis hash fields; undefined when they are missing or malformed. */
export function parseApiKeyRecord(fields: Record<string, string>): ApiKeyRecord | undefined {
  const ratePerSecond = Number(fields.rate);
  const burst = Number(fields.burst);
  const dailyQuota = Number(fields.dailyQuota);
  const createdAtUnixMs = Number(fields.createdAtUnixMs);
  const tasks = (fields.tasks ?? '').split(',').filter((task): task is Task => (TASKS as readonly string[]).includes(task));
  if (!fields.name || !(ratePerSecond > 0) || !(burst >= 1) || !(dailyQuota >= 1) || !Number.isFinite(createdAtUnixMs)) return undefined;
  return { name: fields.name, ratePerSecond, burst, dailyQuota, tasks, createdAtUnixMs };
}

/** The UTC day of a time, `YYYY-MM-DD`: daily quotas reset at 00:00 UTC. */
export function utcDay(unixMs: number): string {
  return new Date(unixMs).toISOString().slice(0, 10);
}

/** Milliseconds from `unixMs` to the next 00:00 UTC (when the day's quota resets). */
export function msUntilUtcMidnight(unixMs: number): number {
  const day = 86_400_000;
  return day - (((unixMs % day) + day) % day);
}
