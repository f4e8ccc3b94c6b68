import { assertSha256, assertTtl, checkBlob, validateOptions, type BlobStore, type BlobStoreOptions, type PutBlobResult, type StoredBlob } from './blob-store';

/**
 * A BlobStore in process memory with the same behaviour as RedisBlobStore (write once, TTL refreshed
 * on put, expiry), for unit tests of the apps. `now` (Unix ms) is injectable so tests can move time.
 */
export class InMemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, { bytes: Buffer; mediaType: string; expiresAt: number }>();

  constructor(
    private readonly options: Omit<BlobStoreOptions, 'keyPrefix'> & { keyPrefix?: string },
    private readonly now: () => number = Date.now,
  ) {
    validateOptions({ ...options, keyPrefix: options.keyPrefix ?? 'memory' });
  }

  async put(bytes: Uint8Array, mediaType: string): Promise<PutBlobResult> {
    const sha256 = checkBlob(bytes, mediaType, this.options.maxBytes);
    const expiresAt = this.now() + this.options.ttlSeconds * 1000;
    const existing = this.live(sha256);
    if (existing) {
      existing.expiresAt = expiresAt;
      return { sha256, byteLength: bytes.byteLength, mediaType: existing.mediaType, created: false };
    }
    this.blobs.set(sha256, { bytes: Buffer.from(bytes), mediaType, expiresAt });
    return { sha256, byteLength: bytes.byteLength, mediaType, created: true };
  }

  async get(sha256: string): Promise<StoredBlob | undefined> {
    assertSha256(sha256);
    const blob = this.live(sha256);
    return blob ? { bytes: Buffer.from(blob.bytes), mediaType: blob.mediaType } : undefined;
  }

  async has(sha256: string): Promise<boolean> {
    assertSha256(sha256);
    return this.live(sha256) !== undefined;
  }

  async touch(sha256: string, ttlSeconds = this.options.ttlSeconds): Promise<boolean> {
    assertSha256(sha256);
    assertTtl(ttlSeconds);
    const blob = this.live(sha256);
    if (blob) blob.expiresAt = this.now() + ttlSeconds * 1000;
    return blob !== undefined;
  }

  async delete(sha256: string): Promise<boolean> {
    assertSha256(sha256);
    const existed = this.live(sha256) !== undefined;
    this.blobs.delete(sha256);
    return existed;
  }

  /** Number of live blobs. */
  get size(): number {
    for (const sha of this.blobs.keys()) this.live(sha);
    return this.blobs.size;
  }

  private live(sha256: string) {
    const blob = this.blobs.get(sha256);
    if (blob && blob.expiresAt <= this.now()) {
      this.blobs.delete(sha256);
      return undefined;
    }
    return blob;
  }
}
