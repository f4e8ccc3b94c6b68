import type { Redis } from 'ioredis';
import type { CompletionMessage, InferenceResultJson, RedisKeys } from '@rsmoe/contracts';

const STORE_AND_PUBLISH = `
if redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]), 'NX') then
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return 1
end
return 0`;

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
    const message: CompletionMessage = { requestId: result.requestId, result };
    // One round trip, and atomic: only the writer that stored the result publishes it.
    const stored = await this.redis.eval(
      STORE_AND_PUBLISH,
      2,
      this.keys.resultKey(result.requestId),
      this.keys.completionChannel(result.requestId),
      JSON.stringify(result),
      String(this.ttlSeconds),
      JSON.stringify(message),
    );
    return stored === 1;
  }
}
