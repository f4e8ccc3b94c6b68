import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { RedisKeys } from '@rsmoe/contracts';
import type { ImageFeatures } from '@rsmoe/runtime';

export interface FeatureCacheOptions {
  /** How long computed features stay shared, in seconds. */
  ttlSeconds: number;
  /** How long another process may hold the "encoding now" lock before we compute ourselves, in ms. */
  lockTimeoutMs: number;
  /** Poll interval while another process encodes the same image, in ms. */
  pollIntervalMs: number;
  /** Bytes of features this process also keeps in memory (least recently used first out); 0: none. */
  memoryBytes?: number;
}

export interface CachedFeatures {
  features: ImageFeatures;
  /** True when the features came from the cache (ours or another expert's). */
  cached: boolean;
  preprocessMs: number;
  visionEncodeMs: number;
}

/**
 * Image features in Redis, keyed by image hash and encoder id, so every expert sharing an encoder reuses
 * one encoding. A short lock (SET NX) makes concurrent experts wait for the first one instead of all
 * encoding the same image; in-process requests for the same key share one promise. A bounded in-memory
 * LRU in front spares the Redis read and the copy for images asked about again (several questions on
 * one image are the usual RSVQA case). Features depend only on the image and the encoder, so a copy
 * can never be stale.
 */
export class RedisFeatureCache {
  private readonly inFlight = new Map<string, Promise<CachedFeatures>>();
  private readonly memory: LRUCache<string, ImageFeatures> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly options: FeatureCacheOptions,
  ) {
    const memoryBytes = options.memoryBytes ?? 0;
    this.memory =
      memoryBytes > 0
        ? new LRUCache({ maxSize: memoryBytes, sizeCalculation: (features) => Math.max(1, features.data.byteLength), ttl: options.ttlSeconds * 1000 })
        : undefined;
  }

  getOrCompute(
    imageSha256: string,
    encoderId: string,
    shape: { tokens: number; hiddenSize: number },
    compute: () => Promise<{ features: ImageFeatures; preprocessMs: number; visionEncodeMs: number }>,
  ): Promise<CachedFeatures> {
    const key = this.keys.featureCacheKey(imageSha256, encoderId);
    const remembered = this.memory?.get(key);
    if (remembered) return Promise.resolve({ features: remembered, cached: true, preprocessMs: 0, visionEncodeMs: 0 });
    const existing = this.inFlight.get(key);
    if (existing) return existing.then((found) => ({ ...found, cached: true, preprocessMs: 0, visionEncodeMs: 0 }));
    const pending = this.lookupOrCompute(key, encoderId, shape, compute)
      .then((found) => {
        this.memory?.set(key, found.features);
        return found;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, pending);
    return pending;
  }

  private async lookupOrCompute(
    key: string,
    encoderId: string,
    shape: { tokens: number; hiddenSize: number },
    compute: () => Promise<{ features: ImageFeatures; preprocessMs: number; visionEncodeMs: number }>,
  ): Promise<CachedFeatures> {
    const fromCache = (bytes: Buffer): CachedFeatures => ({
      features: { encoderId, ...shape, data: toFloat32(bytes) },
      cached: true,
      preprocessMs: 0,
      visionEncodeMs: 0,
    });
    const hit = await this.read(key, shape);
    if (hit) return fromCache(hit);
    const lockKey = `${key}:lock`;
    const giveUpAt = Date.now() + this.options.lockTimeoutMs;
    for (;;) {
      const locked = await this.redis.set(lockKey, '1', 'PX', this.options.lockTimeoutMs, 'NX');
      if (locked) {
        try {
          // Double-checked: another expert may have stored the features between our read and our lock.
          const stored = await this.read(key, shape);
          if (stored) return fromCache(stored);
          return await this.computeAndStore(key, compute);
        } finally {
          await this.redis.del(lockKey);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.pollIntervalMs));
      const shared = await this.read(key, shape);
      if (shared) return fromCache(shared);
      // The holder is stuck or gone (its lock expires on its own): stop waiting and encode ourselves.
      if (Date.now() >= giveUpAt) return this.computeAndStore(key, compute);
    }
  }

  private async computeAndStore(
    key: string,
    compute: () => Promise<{ features: ImageFeatures; preprocessMs: number; visionEncodeMs: number }>,
  ): Promise<CachedFeatures> {
    const computed = await compute();
    const data = computed.features.data;
    await this.redis.set(key, Buffer.from(data.buffer, data.byteOffset, data.byteLength), 'EX', this.options.ttlSeconds);
    return { ...computed, cached: false };
  }

  private async read(key: string, shape: { tokens: number; hiddenSize: number }): Promise<Buffer | undefined> {
    const bytes = await this.redis.getBuffer(key);
    // A wrong length means another encoder wrote under this id: ignore it rather than feed garbage.
    return bytes && bytes.byteLength === shape.tokens * shape.hiddenSize * 4 ? bytes : undefined;
  }
}

function toFloat32(bytes: Buffer): Float32Array {
  // Copy: Buffer slices may be unaligned views into a shared pool.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}
