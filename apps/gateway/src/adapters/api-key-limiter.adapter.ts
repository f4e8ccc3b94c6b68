import { TASKS, apiKeyId, msUntilUtcMidnight, parseApiKeyRecord, utcDay, type RedisKeys, type Task } from '@rsmoe/contracts';
import type { Redis } from 'ioredis';
import { StorageUnavailableError } from '../errors/storage-errors';

/** The key a request came with, once it is known to exist. */
export interface ApiKeyIdentity {
  /** sha256 of the secret (never the secret): keys the bucket, the usage and request owners. */
  id: string;
  /** The key's name: what logs and metrics show. */
  name: string;
  /** The tasks it may run (known once admitted). */
  tasks?: readonly Task[];
}

/** The token bucket after a decision, for the `RateLimit-*` headers. */
export interface BucketState {
  /** Bucket size (burst). */
  limit: number;
  /** Whole tokens left. */
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
}

/** The daily quota after a decision. */
export interface QuotaState {
  limit: number;
  /** Images counted today (UTC), this request included when admitted. */
  used: number;
  /** Seconds until 00:00 UTC, when it resets. */
  resetSeconds: number;
}

/** What the limiter decided about one request. */
export type Admission =
  | { outcome: 'unauthenticated' }
  | { outcome: 'forbidden'; key: ApiKeyIdentity }
  | { outcome: 'rate_limited'; key: ApiKeyIdentity; bucket: BucketState; quota: QuotaState; retryAfterMs: number }
  | { outcome: 'quota_exceeded'; key: ApiKeyIdentity; bucket: BucketState; quota: QuotaState; retryAfterMs: number }
  | {
      outcome: 'admitted';
      key: ApiKeyIdentity;
      bucket: BucketState;
      quota: QuotaState;
      /** The usage counter charged (for a refund), when images were charged. */
      charged?: { usageKey: string; images: number };
    };

export type AdmissionOutcome = Admission['outcome'];

/** What one request asks of its key. */
export interface AdmissionRequest {
  /** The task of an inference route: checked against the key's tasks. Absent for other routes. */
  task?: Task;
  /** Images to count against the daily quota (0: none; an inference request counts 1). */
  images: number;
}

/** One key's use of its daily quota, for the usage gauges. */
export interface KeyUsage {
  name: string;
  imagesToday: number;
  dailyQuota: number;
}

/** Checks API keys, their tasks, one token bucket per key and the daily quota. */
/** A charge of several images at once (a whole scene's tiles), decided against the daily quota. */
export type ImageCharge =
  | { outcome: 'charged'; quota: QuotaState; charged: { usageKey: string; images: number } }
  | { outcome: 'quota_exceeded'; quota: QuotaState; retryAfterMs: number }
  | { outcome: 'unauthenticated' };

export interface ApiKeyLimiter {
  admit(secret: string, request: AdmissionRequest): Promise<Admission>;
  /**
   * Counts `images` against the daily quota of the (already admitted) key `keyId`, all or none: a scene reserves
   * one image per tile before any tile is queued, and gives back those it never processed when it ends.
   */
  charge(keyId: string, images: number): Promise<ImageCharge>;
  /** Gives back images charged to a request that was not processed (answered with an error). */
  refund(charged: { usageKey: string; images: number }): Promise<void>;
  /** Every key's images today and daily quota. */
  usage(): Promise<KeyUsage[]>;
}

/**
 * One atomic decision, in Redis, for every gateway replica at once: the key exists, may run the task, has
 * a token in its bucket, and the day's usage plus this request stays within the quota; only then are a
 * token and the images taken. Time comes from the caller (replicas' clocks are NTP-synced): a bucket last
 * touched "in the future" (a replica whose clock is ahead) is not refilled, never driven negative.
 *
 * KEYS: 1 the key's record, 2 its bucket, 3 its usage counter of today.
 * ARGV: 1 now (Unix ms), 2 task or '', 3 images to charge, 4 TTL of the usage counter (ms).
 * Returns {outcome, name, tokens, rate, burst, used, quota, tasks}, numbers as strings (Lua numbers would be truncated).
 */
const ADMIT_SCRIPT = `
local rec = redis.call('HMGET', KEYS[1], 'name', 'rate', 'burst', 'dailyQuota', 'tasks')
if not rec[1] then return {'unauthenticated'} end
local rate = tonumber(rec[2])
local burst = tonumber(rec[3])
local quota = tonumber(rec[4])
if ARGV[2] ~= '' and not string.find(',' .. (rec[5] or '') .. ',', ',' .. ARGV[2] .. ',', 1, true) then
  return {'forbidden', rec[1]}
end
local now = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[2], 'tokens', 'atUnixMs')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
local images = tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
local outcome = 'admitted'
if images > 0 and used + images > quota then
  outcome = 'quota_exceeded'
elseif tokens < 1 then
  outcome = 'rate_limited'
else
  tokens = tokens - 1
  if images > 0 then
    used = redis.call('INCRBY', KEYS[3], images)
    redis.call('PEXPIRE', KEYS[3], ARGV[4])
  end
end
redis.call('HSET', KEYS[2], 'tokens', string.format('%.17g', tokens), 'atUnixMs', string.format('%.0f', at))
redis.call('PEXPIRE', KEYS[2], math.ceil(burst / rate * 1000) + 60000)
return {outcome, rec[1], string.format('%.17g', tokens), rec[2], rec[3], tostring(used), rec[4], rec[5] or ''}
`;

/** A refund never takes the counter below 0 (the day may have turned and the counter expired meanwhile). */
const CHARGE_SCRIPT = `
local quota = tonumber(redis.call('HGET', KEYS[1], 'dailyQuota'))
if quota == nil then return {'unauthenticated'} end
local images = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used + images > quota then return {'quota_exceeded', tostring(used), tostring(quota)} end
used = redis.call('INCRBY', KEYS[2], images)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {'charged', tostring(used), tostring(quota)}
`;

const REFUND_SCRIPT = `
local left = redis.call('DECRBY', KEYS[1], ARGV[1])
if left <= 0 then redis.call('DEL', KEYS[1]) end
return left
`;

type ScriptedRedis = Redis & {
  rsmoeAdmit(record: string, bucket: string, usage: string, now: string, task: string, images: string, usageTtlMs: string): Promise<string[]>;
  rsmoeRefund(usage: string, images: string): Promise<number>;
  rsmoeCharge(record: string, usage: string, images: string, usageTtlMs: string): Promise<string[]>;
};

/** A usage counter outlives its day by one day, so that yesterday's total can still be read. */
const USAGE_GRACE_MS = 86_400_000;

/** ApiKeyLimiter on Redis (a Lua script run by EVALSHA); `now` is injected so that tests can drive time. */
export class RedisApiKeyLimiter implements ApiKeyLimiter {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly now: () => number = Date.now,
  ) {
    this.redis = redis as ScriptedRedis;
    // defineCommand is idempotent per name; ioredis sends EVALSHA and falls back to EVAL once after a NOSCRIPT.
    if (typeof this.redis.rsmoeAdmit !== 'function') redis.defineCommand('rsmoeAdmit', { numberOfKeys: 3, lua: ADMIT_SCRIPT });
    if (typeof this.redis.rsmoeRefund !== 'function') redis.defineCommand('rsmoeRefund', { numberOfKeys: 1, lua: REFUND_SCRIPT });
    if (typeof this.redis.rsmoeCharge !== 'function') redis.defineCommand('rsmoeCharge', { numberOfKeys: 2, lua: CHARGE_SCRIPT });
  }

  async admit(secret: string, request: AdmissionRequest): Promise<Admission> {
    const id = apiKeyId(secret);
    const now = this.now();
    const usageKey = this.keys.dailyUsageKey(id, utcDay(now));
    const untilMidnight = msUntilUtcMidnight(now);
    let reply: string[];
    try {
      reply = await this.redis.rsmoeAdmit(
        this.keys.apiKeyKey(id),
        this.keys.rateBucketKey(id),
        usageKey,
        String(now),
        request.task ?? '',
        String(request.images),
        String(untilMidnight + USAGE_GRACE_MS),
      );
    } catch (error) {
      throw new StorageUnavailableError(`checking an API key failed: ${(error as Error).message}`, { cause: error });
    }
    const [outcome, name, tokensText, rateText, burstText, usedText, quotaText, tasksText] = reply;
    if (outcome === 'unauthenticated') return { outcome };
    const key = { id, name: name! };
    if (outcome === 'forbidden') return { outcome, key };
    const tokens = Number(tokensText);
    const rate = Number(rateText);
    const burst = Number(burstText);
    const bucket: BucketState = { limit: burst, remaining: Math.floor(tokens), resetSeconds: Math.ceil((burst - tokens) / rate) };
    const quota: QuotaState = { limit: Number(quotaText), used: Number(usedText), resetSeconds: Math.ceil(untilMidnight / 1000) };
    if (outcome === 'quota_exceeded') return { outcome, key, bucket, quota, retryAfterMs: untilMidnight };
    if (outcome === 'rate_limited') return { outcome, key, bucket, quota, retryAfterMs: Math.ceil(((1 - tokens) / rate) * 1000) };
    const tasks = (tasksText ?? '').split(',').filter((task): task is Task => (TASKS as readonly string[]).includes(task));
    return { outcome: 'admitted', key: { ...key, tasks }, bucket, quota, ...(request.images > 0 ? { charged: { usageKey, images: request.images } } : {}) };
  }

  async charge(keyId: string, images: number): Promise<ImageCharge> {
    const now = this.now();
    const usageKey = this.keys.dailyUsageKey(keyId, utcDay(now));
    const untilMidnight = msUntilUtcMidnight(now);
    let reply: string[];
    try {
      reply = await this.redis.rsmoeCharge(this.keys.apiKeyKey(keyId), usageKey, String(images), String(untilMidnight + USAGE_GRACE_MS));
    } catch (error) {
      throw new StorageUnavailableError(`charging an API key's quota failed: ${(error as Error).message}`, { cause: error });
    }
    const [outcome, usedText, quotaText] = reply;
    if (outcome === 'unauthenticated') return { outcome };
    const quota: QuotaState = { limit: Number(quotaText), used: Number(usedText), resetSeconds: Math.ceil(untilMidnight / 1000) };
    if (outcome === 'quota_exceeded') return { outcome, quota, retryAfterMs: untilMidnight };
    return { outcome: 'charged', quota, charged: { usageKey, images } };
  }

  async refund(charged: { usageKey: string; images: number }): Promise<void> {
    await this.redis.rsmoeRefund(charged.usageKey, String(charged.images));
  }

  async usage(): Promise<KeyUsage[]> {
    const index = await this.redis.hgetall(this.keys.apiKeyIndexKey());
    const entries = Object.entries(index);
    if (entries.length === 0) return [];
    const day = utcDay(this.now());
    const pipeline = this.redis.pipeline();
    for (const [, id] of entries) {
      pipeline.hgetall(this.keys.apiKeyKey(id));
      pipeline.get(this.keys.dailyUsageKey(id, day));
    }
    const replies = (await pipeline.exec()) ?? [];
    const usage: KeyUsage[] = [];
    entries.forEach(([name], i) => {
      const record = parseApiKeyRecord((replies[2 * i]?.[1] ?? {}) as Record<string, string>);
      if (record) usage.push({ name, imagesToday: Number(replies[2 * i + 1]?.[1] ?? 0), dailyQuota: record.dailyQuota });
    });
    return usage;
  }
}
