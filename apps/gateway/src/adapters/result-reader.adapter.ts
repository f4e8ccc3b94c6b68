import { parseInferenceResult, type InferenceResultJson, type RedisKeys } from '@rsmoe/contracts';
import type { Redis } from 'ioredis';
import { StorageUnavailableError } from '../errors/storage-errors';

/** Reads stored results (written by the aggregator at RedisKeys.resultKey with its TTL). */
export interface ResultReader {
  /** The stored result, or undefined when there is none (never stored, or expired). */
  get(requestId: string): Promise<InferenceResultJson | undefined>;
}

/** The result already stored is not valid JSON or not an InferenceResultJson: a bug elsewhere, never the client's. */
export class StoredResultInvalidError extends Error {
  override readonly name = 'StoredResultInvalidError';
}

/** ResultReader on Redis; takes a connection owned by the caller. */
export class RedisResultReader implements ResultReader {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async get(requestId: string): Promise<InferenceResultJson | undefined> {
    const key = this.keys.resultKey(requestId);
    let text: string | null;
    try {
      text = await this.redis.get(key);
    } catch (error) {
      throw new StorageUnavailableError(`reading ${key} failed: ${(error as Error).message}`, { cause: error });
    }
    if (text === null) return undefined;
    try {
      return parseInferenceResult(JSON.parse(text));
    } catch (error) {
      throw new StoredResultInvalidError(`${key}: ${(error as Error).message}`, { cause: error });
    }
  }
}
