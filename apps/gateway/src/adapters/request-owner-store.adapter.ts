import type { RedisKeys } from '@rsmoe/contracts';
import type { Redis } from 'ioredis';
import { StorageUnavailableError } from '../errors/storage-errors';

/**
 * Which API key made a request (GET and DELETE /v1/requests/{id} answer only to that key) and which images it
 * stored (DELETE erases them).
 */
export interface RequestOwnerStore {
  /** Records the key id that made `requestId` (before its images are stored or anything is queued). */
  bind(requestId: string, keyId: string): Promise<void>;
  /** The key id that made `requestId`; undefined when unknown or expired. */
  ownerOf(requestId: string): Promise<string | undefined>;
  /** Records the images `requestId` stored (their sha256s). */
  bindImages(requestId: string, sha256s: readonly string[]): Promise<void>;
}

/** RequestOwnerStore on Redis: one string per request, kept as long as its result or async answer. */
export class RedisRequestOwnerStore implements RequestOwnerStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  async bind(requestId: string, keyId: string): Promise<void> {
    const key = this.keys.requestOwnerKey(requestId);
    try {
      await this.redis.set(key, keyId, 'EX', this.ttlSeconds);
    } catch (error) {
      throw new StorageUnavailableError(`writing ${key} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  async bindImages(requestId: string, sha256s: readonly string[]): Promise<void> {
    if (sha256s.length === 0) return;
    const key = this.keys.requestImagesKey(requestId);
    try {
      await this.redis.multi().sadd(key, ...sha256s).expire(key, this.ttlSeconds).exec();
    } catch (error) {
      throw new StorageUnavailableError(`writing ${key} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  async ownerOf(requestId: string): Promise<string | undefined> {
    const key = this.keys.requestOwnerKey(requestId);
    try {
      return (await this.redis.get(key)) ?? undefined;
    } catch (error) {
      throw new StorageUnavailableError(`reading ${key} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
