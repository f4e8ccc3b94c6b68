import type { RedisKeys } from '@rsmoe/contracts';
import type { Redis } from 'ioredis';
import { StorageUnavailableError } from '../errors/storage-errors';

/** Where an asynchronous request stands: still running, or the HTTP status and body it ended with. */
export type AsyncAnswer = { state: 'pending'; submittedAtUnixMs: number } | { state: 'done'; status: number; body: unknown; finishedAtUnixMs: number };

/** The answers of requests submitted with `Prefer: respond-async`, kept for GET /v1/requests/{id}. */
export interface AsyncAnswerStore {
  /** Marks a request pending; its answer replaces the mark when done. */
  markPending(requestId: string): Promise<void>;
  finish(requestId: string, status: number, body: unknown): Promise<void>;
  get(requestId: string): Promise<AsyncAnswer | undefined>;
}

/** AsyncAnswerStore on Redis: one key per request, with the result's TTL. */
export class RedisAsyncAnswerStore implements AsyncAnswerStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  async markPending(requestId: string): Promise<void> {
    await this.write(requestId, { state: 'pending', submittedAtUnixMs: Date.now() });
  }

  async finish(requestId: string, status: number, body: unknown): Promise<void> {
    await this.write(requestId, { state: 'done', status, body, finishedAtUnixMs: Date.now() });
  }

  async get(requestId: string): Promise<AsyncAnswer | undefined> {
    const key = this.keys.asyncAnswerKey(requestId);
    let text: string | null;
    try {
      text = await this.redis.get(key);
    } catch (error) {
      throw new StorageUnavailableError(`reading ${key} failed: ${(error as Error).message}`, { cause: error });
    }
    return text === null ? undefined : (JSON.parse(text) as AsyncAnswer);
  }

  private async write(requestId: string, answer: AsyncAnswer): Promise<void> {
    const key = this.keys.asyncAnswerKey(requestId);
    try {
      await this.redis.set(key, JSON.stringify(answer), 'EX', this.ttlSeconds);
    } catch (error) {
      throw new StorageUnavailableError(`writing ${key} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
