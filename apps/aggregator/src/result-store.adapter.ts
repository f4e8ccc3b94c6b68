import type { Redis } from 'ioredis';
import type { CompletionMessage, InferenceResultJson, RedisKeys } from '@rsmoe/contracts';

/**
 * Stores a request's result once (SET NX with TTL) and publishes it on the request's completion channel.
 * The first writer wins: the deadline job and a late parent job can both try, only one result exists.
 */
export class RedisResultStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  async exists(requestId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.resultKey(requestId))) === 1;
  }

  /** True when this call stored (and published) the result; false when one was already there. */
  async storeAndPublish(result: InferenceResultJson): Promise<boolean> {
    const stored = await this.redis.set(this.keys.resultKey(result.requestId), JSON.stringify(result), 'EX', this.ttlSeconds, 'NX');
    if (stored !== 'OK') return false;
    const message: CompletionMessage = { requestId: result.requestId, result };
    await this.redis.publish(this.keys.completionChannel(result.requestId), JSON.stringify(message));
    return true;
  }
}
