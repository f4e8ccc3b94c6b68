import type { RedisKeys } from '@rsmoe/contracts';
import type { Redis } from 'ioredis';
import { StorageUnavailableError } from '../errors/storage-errors';

/** What erasing a request removed. */
export interface Erasure {
  /** Redis keys deleted: the result, the async answer, the images, their cached features, the bindings. */
  deletedKeys: number;
  /** Images erased (sha256s). */
  images: string[];
}

/**
 * Erases what a request left in Redis before its TTLs end: its stored result and async answer, the image bytes
 * it stored and every cached feature entry of those images (any encoder and packing, found by SCAN), and its
 * owner and image bindings. Images are content-addressed: an identical image another request stored goes too.
 */
export class RequestEraser {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /**
   * Erases the request. `options.images`: erase only these of its images (a cancelled request keeps the ones
   * it did not store first, or that another request is using); absent: every image it stored.
   */
  async erase(requestId: string, options: { images?: readonly string[] } = {}): Promise<Erasure> {
    try {
      const stored = await this.redis.smembers(this.keys.requestImagesKey(requestId));
      const images = options.images === undefined ? stored : stored.filter((sha256) => options.images?.includes(sha256));
      const featureKeys: string[] = [];
      for (const sha256 of images) featureKeys.push(...(await this.scan(this.keys.featureCachePattern(sha256))));
      const keys = [
        this.keys.resultKey(requestId),
        this.keys.asyncAnswerKey(requestId),
        this.keys.requestOwnerKey(requestId),
        this.keys.requestImagesKey(requestId),
        ...images.map((sha256) => this.keys.blobKey(sha256)),
        ...featureKeys,
      ];
      const deletedKeys = await this.redis.del(...keys);
      return { deletedKeys, images };
    } catch (error) {
      throw new StorageUnavailableError(`erasing request ${requestId} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  private async scan(pattern: string): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      found.push(...keys);
      cursor = next;
    } while (cursor !== '0');
    return found;
  }
}
