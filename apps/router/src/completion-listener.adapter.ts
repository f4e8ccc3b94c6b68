import type { Redis } from 'ioredis';
import {
  parseCompletionMessage,
  parseExpertJobResult,
  type ExpertOutputJson,
  type InferenceResultJson,
  type RedisKeys,
} from '@rsmoe/contracts';

/** The result did not arrive in time. */
export class CompletionTimeoutError extends Error {
  override readonly name = 'CompletionTimeoutError';
}

interface Waiter {
  onResult: (result: InferenceResultJson) => void;
  onPartial?: (output: ExpertOutputJson) => void;
}

/**
 * Completion is pushed, not polled: one subscriber connection for the whole process, one channel per
 * in-flight request, resolved when the aggregator publishes. Subscribe before dispatching, so a fast
 * result cannot be missed.
 */
export class CompletionListener {
  private readonly waiters = new Map<string, Waiter>();

  constructor(
    private readonly subscriber: Redis,
    private readonly keys: RedisKeys,
    /** Reads a stored result: covers a result published before our subscription was active. */
    private readonly readStored: (requestId: string) => Promise<InferenceResultJson | undefined>,
  ) {
    subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel.toString(), message.toString()));
  }

  /**
   * Subscribes for one request and returns the pending result; `ready` resolves once the subscription is
   * active. The result rejects with CompletionTimeoutError after `timeoutMs`.
   */
  async listen(
    requestId: string,
    timeoutMs: number,
    onPartial?: (output: ExpertOutputJson) => void,
  ): Promise<{ result: Promise<InferenceResultJson>; cancel: () => void }> {
    const channels = [this.keys.completionChannel(requestId), ...(onPartial ? [this.keys.partialChannel(requestId)] : [])];
    let cancel: () => void = () => undefined;
    const result = new Promise<InferenceResultJson>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new CompletionTimeoutError(`no result for request ${requestId} within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(requestId);
        void this.subscriber.unsubscribe(...channels).catch(() => undefined);
      };
      cancel = cleanup;
      this.waiters.set(requestId, {
        onResult: (value) => {
          cleanup();
          resolve(value);
        },
        onPartial,
      });
    });
    await this.subscriber.subscribe(...channels);
    const stored = await this.readStored(requestId);
    if (stored) this.waiters.get(requestId)?.onResult(stored);
    return { result, cancel };
  }

  private onMessage(channel: string, message: string): void {
    const completionPrefix = this.keys.completionChannel('');
    const partialPrefix = this.keys.partialChannel('');
    try {
      if (channel.startsWith(completionPrefix)) {
        const completion = parseCompletionMessage(JSON.parse(message));
        this.waiters.get(completion.requestId)?.onResult(completion.result);
      } else if (channel.startsWith(partialPrefix)) {
        const requestId = channel.slice(partialPrefix.length);
        this.waiters.get(requestId)?.onPartial?.(parseExpertJobResult(JSON.parse(message)));
      }
    } catch {
      // A malformed message on our channel cannot be answered; the request's own deadline still applies.
    }
  }
}
