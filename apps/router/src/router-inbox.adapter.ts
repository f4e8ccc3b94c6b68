import type { Redis } from 'ioredis';
import { parseRouterInboxMessage, type InferenceResultJson } from '@rsmoe/contracts';
import type { ExpertReport } from './router.service';

/** The result did not arrive in time. */
export class CompletionTimeoutError extends Error {
  override readonly name = 'CompletionTimeoutError';
}

interface Waiter {
  onResult: (result: InferenceResultJson) => void;
  onReport?: (report: ExpertReport) => void;
}

/**
 * Completion is pushed, not polled, to one channel per router process: the inbox, subscribed once at
 * start. Jobs carry it as `replyTo`; experts publish their outputs and final failures there, the aggregator
 * its stored result. So the request path never subscribes or unsubscribes. Messages published while the connection
 * is down are lost: after a reconnect every waiting request re-reads the result store.
 */
export class RouterInbox {
  private readonly waiters = new Map<string, Waiter>();
  private started = false;

  constructor(
    private readonly subscriber: Redis,
    /** The channel (RedisKeys.routerInbox of this process's instance id). */
    readonly channel: string,
    /** Reads a stored result. */
    private readonly readStored: (requestId: string) => Promise<InferenceResultJson | undefined>,
  ) {
    subscriber.on('messageBuffer', (channelName: Buffer, message: Buffer) => {
      if (channelName.toString() === this.channel) this.onMessage(message.toString());
    });
    subscriber.on('ready', () => {
      if (this.started) void this.recoverAfterReconnect();
    });
  }

  /** Subscribes; resolves once the subscription is active, so no reply to a later dispatch can be missed. */
  async start(): Promise<void> {
    await this.subscriber.subscribe(this.channel);
    this.started = true;
  }

  /** Waits for one request's result, telling `onReport` each expert report; rejects with CompletionTimeoutError after `timeoutMs`. */
  listen(
    requestId: string,
    timeoutMs: number,
    onReport?: (report: ExpertReport) => void,
  ): { result: Promise<InferenceResultJson>; cancel: () => void } {
    if (!this.started) throw new Error('RouterInbox.listen before start()');
    let cancel: () => void = () => undefined;
    const result = new Promise<InferenceResultJson>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new CompletionTimeoutError(`no result for request ${requestId} within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(requestId);
      };
      cancel = cleanup;
      this.waiters.set(requestId, {
        onResult: (value) => {
          cleanup();
          resolve(value);
        },
        onReport,
      });
    });
    return { result, cancel };
  }

  /** Requests waiting for their result. */
  get waiting(): number {
    return this.waiters.size;
  }

  private onMessage(text: string): void {
    let message;
    try {
      message = parseRouterInboxMessage(text);
    } catch {
      // A malformed message cannot be answered; the request's own deadline still applies.
      return;
    }
    const waiter = this.waiters.get(message.requestId);
    if (!waiter) return;
    if (message.kind === 'result') waiter.onResult(message.result);
    else if (message.kind === 'partial') waiter.onReport?.({ kind: 'partial', output: message.output });
    else waiter.onReport?.({ kind: 'failure', expertId: message.expertId, reason: message.reason });
  }

  private async recoverAfterReconnect(): Promise<void> {
    try {
      // Resubscribing is idempotent; once it is confirmed, a result stored later is also published to us.
      await this.subscriber.subscribe(this.channel);
      await Promise.all(
        [...this.waiters.keys()].map(async (requestId) => {
          const stored = await this.readStored(requestId);
          if (stored) this.waiters.get(requestId)?.onResult(stored);
        }),
      );
    } catch {
      // Still down: the next 'ready' tries again.
    }
  }
}
