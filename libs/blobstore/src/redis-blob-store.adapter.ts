import { createRedisKeys, type RedisKeys } from '@rsmoe/contracts';
import type { Redis } from 'ioredis';
import {
  assertSha256,
  assertTtl,
  checkBlob,
  validateOptions,
  type BlobStore,
  type BlobStoreOptions,
  type PutBlobResult,
  type StoredBlob,
} from './blob-store';

const BYTES_FIELD = 'bytes';
const TYPE_FIELD = 'type';

/**
 * The blob store on Redis: one hash per blob at `<keyPrefix>:blob:<sha256>` with fields `bytes` (raw)
 * and `type` (media type), expiring after `ttlSeconds`. Takes a connection owned by the caller (never
 * closes it). Because the key is the content's digest, a second put of the same bytes writes nothing
 * and only refreshes the TTL.
 */
export class RedisBlobStore implements BlobStore {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    private readonly options: BlobStoreOptions,
  ) {
    validateOptions(options);
    this.keys = createRedisKeys(options.keyPrefix);
  }

  async put(bytes: Uint8Array, mediaType: string): Promise<PutBlobResult> {
    const sha256 = checkBlob(bytes, mediaType, this.options.maxBytes);
    const key = this.keys.blobKey(sha256);
    const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // One transaction: write-once fields (HSETNX), TTL set or refreshed, and the media type actually stored.
    const replies = await this.redis
      .multi()
      .hsetnx(key, BYTES_FIELD, buffer)
      .hsetnx(key, TYPE_FIELD, mediaType)
      .expire(key, this.options.ttlSeconds)
      .hget(key, TYPE_FIELD)
      .exec();
    if (!replies) throw new Error(`blob store transaction on ${key} was aborted`);
    const failed = replies.find(([error]) => error);
    if (failed) throw failed[0]!;
    return { sha256, byteLength: bytes.byteLength, mediaType: (replies[3][1] as string | null) ?? mediaType, created: replies[0][1] === 1 };
  }

  async get(sha256: string): Promise<StoredBlob | undefined> {
    assertSha256(sha256);
    const [bytes, type] = await this.redis.hmgetBuffer(this.keys.blobKey(sha256), BYTES_FIELD, TYPE_FIELD);
    if (!bytes) return undefined;
    return { bytes, mediaType: type ? type.toString('utf8') : 'application/octet-stream' };
  }

  async has(sha256: string): Promise<boolean> {
    assertSha256(sha256);
    return (await this.redis.exists(this.keys.blobKey(sha256))) === 1;
  }

  async touch(sha256: string, ttlSeconds = this.options.ttlSeconds): Promise<boolean> {
    assertSha256(sha256);
    assertTtl(ttlSeconds);
    return (await this.redis.expire(this.keys.blobKey(sha256), ttlSeconds)) === 1;
  }

  async delete(sha256: string): Promise<boolean> {
    assertSha256(sha256);
    return (await this.redis.del(this.keys.blobKey(sha256))) === 1;
  }
}
