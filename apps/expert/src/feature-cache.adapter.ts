import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { RedisKeys } from '@rsmoe/contracts';
import type { FeaturePacking, ImageFeatures } from '@rsmoe/runtime';

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

/** Which features one cache entry holds: one image, through one encoder, packed one way. */
export interface FeatureKey {
  /** sha256 of the image bytes (the blob store key). */
  imageSha256: string;
  /** The runtime's encoderId: sha256 of the vision graph, its weights and its preprocessing settings. */
  encoderId: string;
  /** `anyres` (a LLaVA-OneVision prompt's only image) or `single-crop` (every other case). */
  packing: FeaturePacking;
}

/** Features just computed, with where the time went. */
export interface ComputedFeatures {
  features: ImageFeatures;
  preprocessMs: number;
  visionEncodeMs: number;
}

export interface CachedFeatures extends ComputedFeatures {
  /** True when the features came from the cache (ours or another expert's). */
  cached: boolean;
}

/**
 * The stored value of one entry: `RSF1`, then the feature count N and the width D (uint32 little-endian
 * each), then N × D float32 little-endian values. The shape travels with the values because it depends on
 * the image (anyres tiling) and the model, not on a fixed config.
 */
const ENTRY_MAGIC = Buffer.from('RSF1', 'latin1');
const ENTRY_HEADER_BYTES = 12;

export function encodeFeatureEntry(features: ImageFeatures): Buffer {
  const header = Buffer.alloc(ENTRY_HEADER_BYTES);
  ENTRY_MAGIC.copy(header, 0);
  header.writeUInt32LE(features.tokens, 4);
  header.writeUInt32LE(features.hiddenSize, 8);
  const { data } = features;
  return Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** The features of a stored entry, or undefined when the bytes are not a whole entry (another writer, a truncation). */
export function decodeFeatureEntry(bytes: Buffer, key: FeatureKey): ImageFeatures | undefined {
  if (bytes.byteLength < ENTRY_HEADER_BYTES || !bytes.subarray(0, 4).equals(ENTRY_MAGIC)) return undefined;
  const tokens = bytes.readUInt32LE(4);
  const hiddenSize = bytes.readUInt32LE(8);
  if (tokens === 0 || hiddenSize === 0 || bytes.byteLength !== ENTRY_HEADER_BYTES + tokens * hiddenSize * 4) return undefined;
  // Copy: Buffer slices may be unaligned views into a shared pool.
  const copy = new Uint8Array(bytes.byteLength - ENTRY_HEADER_BYTES);
  copy.set(bytes.subarray(ENTRY_HEADER_BYTES));
  return { encoderId: key.encoderId, packing: key.packing, tokens, hiddenSize, data: new Float32Array(copy.buffer) };
}

/**
 * Image features in Redis, one entry per (image, encoder, packing), so every expert whose encoder is
 * identical (the same content hash) reuses one encoding. A short lock (SET NX) makes concurrent experts
 * wait for the first one instead of all encoding the same image; in-process requests for the same key
 * share one promise. A bounded in-memory LRU in front spares the Redis read and the copy for images asked
 * about again (several questions on one image are the usual RSVQA case). Features depend only on the
 * image, the encoder and the packing, so a copy can never be stale.
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

  getOrCompute(key: FeatureKey, compute: () => Promise<ComputedFeatures>): Promise<CachedFeatures> {
    const redisKey = this.keys.featureCacheKey(key.imageSha256, key.encoderId, key.packing);
    const remembered = this.memory?.get(redisKey);
    if (remembered) return Promise.resolve({ features: remembered, cached: true, preprocessMs: 0, visionEncodeMs: 0 });
    const existing = this.inFlight.get(redisKey);
    if (existing) return existing.then((found) => ({ ...found, cached: true, preprocessMs: 0, visionEncodeMs: 0 }));
    const pending = this.lookupOrCompute(redisKey, key, compute)
      .then((found) => {
        this.memory?.set(redisKey, found.features);
        return found;
      })
      .finally(() => this.inFlight.delete(redisKey));
    this.inFlight.set(redisKey, pending);
    return pending;
  }

  private async lookupOrCompute(redisKey: string, key: FeatureKey, compute: () => Promise<ComputedFeatures>): Promise<CachedFeatures> {
    const fromCache = (features: ImageFeatures): CachedFeatures => ({ features, cached: true, preprocessMs: 0, visionEncodeMs: 0 });
    const hit = await this.read(redisKey, key);
    if (hit) return fromCache(hit);
    const lockKey = `${redisKey}:lock`;
    const giveUpAt = Date.now() + this.options.lockTimeoutMs;
    for (;;) {
      const locked = await this.redis.set(lockKey, '1', 'PX', this.options.lockTimeoutMs, 'NX');
      if (locked) {
        try {
          // Double-checked: another expert may have stored the features between our read and our lock.
          const stored = await this.read(redisKey, key);
          if (stored) return fromCache(stored);
          return await this.computeAndStore(redisKey, key, compute);
        } finally {
          await this.redis.del(lockKey);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.pollIntervalMs));
      const shared = await this.read(redisKey, key);
      if (shared) return fromCache(shared);
      // The holder is stuck or gone (its lock expires on its own): stop waiting and encode ourselves.
      if (Date.now() >= giveUpAt) return this.computeAndStore(redisKey, key, compute);
    }
  }

  private async computeAndStore(redisKey: string, key: FeatureKey, compute: () => Promise<ComputedFeatures>): Promise<CachedFeatures> {
    const computed = await compute();
    const { features } = computed;
    // Features stored under another encoder's or packing's key would be fed to every expert reading it.
    if (features.encoderId !== key.encoderId || features.packing !== key.packing) {
      throw new Error(
        `features of encoder ${features.encoderId.slice(0, 12)} (${features.packing}) computed for the key of ${key.encoderId.slice(0, 12)} (${key.packing})`,
      );
    }
    await this.redis.set(redisKey, encodeFeatureEntry(features), 'EX', this.options.ttlSeconds);
    return { ...computed, cached: false };
  }

  private async read(redisKey: string, key: FeatureKey): Promise<ImageFeatures | undefined> {
    const bytes = await this.redis.getBuffer(redisKey);
    // Not a whole entry: ignore it (and overwrite it) rather than feed garbage to the model.
    return bytes ? decodeFeatureEntry(bytes, key) : undefined;
  }
}
