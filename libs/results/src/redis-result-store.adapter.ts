import type { Redis } from 'ioredis';
import { parseInferenceResult, type InferenceResultJson, type RedisKeys, type RouterInboxMessage } from '@rsmoe/contracts';

const STORE_THEN_NOTIFY = `
if redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]), 'NX') then
  if #KEYS > 1 then redis.call('PUBLISH', KEYS[2], ARGV[3]) end
  return 1
end
return 0`;

/**
 * Stores a request's result once (SET NX with TTL). The first writer wins: the router fusing its
 * experts' reports and the aggregator's deadline job may both try, only one result exists.
 */
export class RedisResultStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  /** The stored result of a request, validated; undefined when none (not yet, or past its TTL). */
  async get(requestId: string): Promise<InferenceResultJson | undefined> {
    const stored = await this.redis.get(this.keys.resultKey(requestId));
    return stored === null ? undefined : parseInferenceResult(JSON.parse(stored));
  }

  async exists(requestId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.resultKey(requestId))) === 1;
  }

  /**
   * True when this call stored the result. Only then, and only when `notify` names a channel (the
   * dispatching router's inbox), the result is published there, atomically with the store.
   */
  async store(result: InferenceResultJson, notify?: string): Promise<boolean> {
    const key = this.keys.resultKey(result.requestId);
    const value = JSON.stringify(result);
    const ttl = String(this.ttlSeconds);
    if (notify === undefined) return (await this.redis.set(key, value, 'EX', this.ttlSeconds, 'NX')) === 'OK';
    const message: RouterInboxMessage = { kind: 'result', requestId: result.requestId, result };
    return (await this.redis.eval(STORE_THEN_NOTIFY, 2, key, notify, value, ttl, JSON.stringify(message))) === 1;
  }
}
