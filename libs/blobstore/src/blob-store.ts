import { createHash } from 'node:crypto';
import { isSha256Hex, type ImageRefJson } from '@rsmoe/contracts';

/** Settings of a blob store. */
export interface BlobStoreOptions {
  /** Prefix of every key (RedisKeys.blobKey under this prefix); tests use a random one. */
  keyPrefix: string;
  /** Lifetime of a blob in seconds, refreshed by every put of the same bytes (integer ≥ 1). */
  ttlSeconds: number;
  /** Largest accepted blob in bytes (integer ≥ 1). */
  maxBytes: number;
}

/** The result of a put: the reference to send on, and whether these bytes were new. */
export interface PutBlobResult extends ImageRefJson {
  /** False when the same bytes were already stored (only their TTL was refreshed). */
  created: boolean;
}

/** A stored blob. */
export interface StoredBlob {
  bytes: Buffer;
  mediaType: string;
}

/** Content-addressed byte store: bytes are written once under their SHA-256 and expire after a TTL. */
export interface BlobStore {
  /** Stores the bytes (if new) and refreshes their TTL. Throws BlobTooLargeError / InvalidBlobError. */
  put(bytes: Uint8Array, mediaType: string): Promise<PutBlobResult>;
  /** The blob, or undefined when it is absent or expired. Throws InvalidSha256Error for a malformed digest. */
  get(sha256: string): Promise<StoredBlob | undefined>;
  has(sha256: string): Promise<boolean>;
  /** Sets the remaining lifetime (default: the store's TTL); false when the blob is absent. */
  touch(sha256: string, ttlSeconds?: number): Promise<boolean>;
  /** Removes the blob; false when it was absent. */
  delete(sha256: string): Promise<boolean>;
}

/** The bytes or media type cannot be stored (empty bytes, malformed media type): a permanent input error. */
export class InvalidBlobError extends Error {
  override readonly name: string = 'InvalidBlobError';
}

/** The bytes exceed `maxBytes`. */
export class BlobTooLargeError extends InvalidBlobError {
  override readonly name = 'BlobTooLargeError';

  constructor(
    readonly byteLength: number,
    readonly maxBytes: number,
  ) {
    super(`blob of ${byteLength} bytes exceeds the limit of ${maxBytes} bytes`);
  }
}

/** A digest that is not 64 lower-case hex characters. */
export class InvalidSha256Error extends Error {
  override readonly name = 'InvalidSha256Error';

  constructor(readonly value: unknown) {
    super(`invalid sha256 ${JSON.stringify(typeof value === 'string' ? value.slice(0, 80) : value)}: expected 64 lower-case hex characters`);
  }
}

/** Lower-case hex SHA-256 of the bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const MEDIA_TYPE = /^[a-z]+\/[a-z0-9.+-]+$/i;

export function assertSha256(sha256: unknown): asserts sha256 is string {
  if (!isSha256Hex(sha256)) throw new InvalidSha256Error(sha256);
}

export function assertTtl(ttlSeconds: number): void {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`ttlSeconds must be an integer ≥ 1 (got ${ttlSeconds})`);
}

export function validateOptions(options: BlobStoreOptions): void {
  assertTtl(options.ttlSeconds);
  if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) throw new RangeError(`maxBytes must be an integer ≥ 1 (got ${options.maxBytes})`);
}

/** Checks what put() receives; returns the digest. */
export function checkBlob(bytes: Uint8Array, mediaType: string, maxBytes: number): string {
  if (!(bytes instanceof Uint8Array)) throw new InvalidBlobError('bytes must be a Uint8Array or Buffer');
  if (bytes.byteLength === 0) throw new InvalidBlobError('cannot store an empty blob');
  if (bytes.byteLength > maxBytes) throw new BlobTooLargeError(bytes.byteLength, maxBytes);
  if (typeof mediaType !== 'string' || !MEDIA_TYPE.test(mediaType)) throw new InvalidBlobError(`invalid media type ${JSON.stringify(mediaType)}`);
  return sha256Hex(bytes);
}
