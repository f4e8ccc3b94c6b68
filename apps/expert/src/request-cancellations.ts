import type { Redis } from 'ioredis';
import type { Logger } from '@rsmoe/observability';

/**
 * The cancels of requests whose jobs this expert is running: a router that withdraws a cancelled request
 * (its client went away, its DELETE came) publishes the request id on the cancel channel when a job of it was
 * already picked up; the job's signal fires and its generation stops at the next token instead of running to
 * its fuse point for nobody. The ids of recent cancels are kept a while (`rememberMs`, at most `rememberCount`):
 * a job picked up just before its cancel was published, or retried after it, starts already cancelled.
 */
export class RequestCancellations {
  private readonly running = new Map<string, Set<AbortController>>();
  /** Recently cancelled request ids with when they were cancelled, oldest first (a Map keeps insertion order). */
  private readonly recent = new Map<string, number>();

  constructor(
    /** A connection of its own: a subscribed ioredis connection runs no other command. */
    private readonly subscriber: Redis,
    private readonly channel: string,
    private readonly logger: Logger,
    private readonly remember: { ms: number; count: number; now?: () => number } = { ms: 5 * 60_000, count: 10_000 },
  ) {}

  async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, requestId: string) => {
      if (channel === this.channel) this.cancel(requestId);
    });
    await this.subscriber.subscribe(this.channel);
  }

  /** A signal that fires when `requestId` is cancelled; `release` when its job has ended. */
  track(requestId: string): { signal: AbortSignal; release(): void } {
    const controller = new AbortController();
    if (this.wasCancelled(requestId)) controller.abort(cancelledError());
    let controllers = this.running.get(requestId);
    if (!controllers) this.running.set(requestId, (controllers = new Set()));
    controllers.add(controller);
    return {
      signal: controller.signal,
      release: () => {
        controllers.delete(controller);
        if (controllers.size === 0 && this.running.get(requestId) === controllers) this.running.delete(requestId);
      },
    };
  }

  /** Requests with a job running here now (for tests and metrics). */
  get size(): number {
    return this.running.size;
  }

  async close(): Promise<void> {
    await this.subscriber.unsubscribe(this.channel).catch(() => undefined);
    this.subscriber.disconnect();
  }

  private cancel(requestId: string): void {
    this.recent.delete(requestId);
    this.recent.set(requestId, this.now());
    if (this.recent.size > this.remember.count) this.recent.delete(this.recent.keys().next().value as string);
    const controllers = this.running.get(requestId);
    if (!controllers) return;
    this.logger.info('request cancelled by its caller: stopping its running job', { requestId });
    for (const controller of controllers) controller.abort(cancelledError());
  }

  private wasCancelled(requestId: string): boolean {
    const cutoff = this.now() - this.remember.ms;
    for (const [id, at] of this.recent) {
      if (at >= cutoff) break;
      this.recent.delete(id);
    }
    return this.recent.has(requestId);
  }

  private now(): number {
    return (this.remember.now ?? Date.now)();
  }
}

function cancelledError(): Error {
  return Object.assign(new Error('the caller cancelled the request'), { name: 'AbortError' });
}
