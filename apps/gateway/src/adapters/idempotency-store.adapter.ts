import type { Redis } from 'ioredis';
import { StorageUnavailableError } from '../errors/storage-errors';

/** What an `Idempotency-Key` stands for: the request it started, running or answered with its HTTP answer. */
export type IdempotencyRecord =
  | { state: 'pending'; fingerprint: string; requestId: string }
  | { state: 'done'; fingerprint: string; requestId: string; status: number; body: unknown };

/** Records of `Idempotency-Key`s, each kept as long as a result. */
export interface IdempotencyStore {
  /** Takes `key` for a new request; resolves undefined when taken, or the record already there. */
  claim(key: string, record: Extract<IdempotencyRecord, { state: 'pending' }>): Promise<IdempotencyRecord | undefined>;
  finish(key: string, record: Extract<IdempotencyRecord, { state: 'done' }>): Promise<void>;
  /** Forgets `key` (a transient failure: a retry with the same key runs again). */
  release(key: string): Promise<void>;
}

/** IdempotencyStore on Redis: SET NX with the TTL, then overwritten with the answer. */
export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  async claim(key: string, record: Extract<IdempotencyRecord, { state: 'pending' }>): Promise<IdempotencyRecord | undefined> {
    return this.guard(key, async () => {
      const taken = await this.redis.set(key, JSON.stringify(record), 'EX', this.ttlSeconds, 'NX');
      if (taken === 'OK') return undefined;
      const text = await this.redis.get(key);
      // Expired between the two commands: take it now.
      if (text === null) return (await this.redis.set(key, JSON.stringify(record), 'EX', this.ttlSeconds, 'NX')) === 'OK' ? undefined : record;
      return JSON.parse(text) as IdempotencyRecord;
    });
  }

  async finish(key: string, record: Extract<IdempotencyRecord, { state: 'done' }>): Promise<void> {
    await this.guard(key, () => this.redis.set(key, JSON.stringify(record), 'EX', this.ttlSeconds));
  }

  async release(key: string): Promise<void> {
    await this.guard(key, () => this.redis.del(key));
  }

  private async guard<T>(key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new StorageUnavailableError(`idempotency record ${key}: ${(error as Error).message}`, { cause: error });
    }
  }
}
