import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@rsmoe/observability';
import { RequestCancellations } from './request-cancellations';

/** A subscribed connection as RequestCancellations uses it: subscribe, then 'message' events. */
function fakeSubscriber(): Redis & { publish(requestId: string): void } {
  const emitter = new EventEmitter();
  return Object.assign(emitter, {
    subscribe: async () => 1,
    unsubscribe: async () => 1,
    disconnect: () => undefined,
    publish: (requestId: string) => emitter.emit('message', 'cancels', requestId),
  }) as unknown as Redis & { publish(requestId: string): void };
}

async function started(remember?: { ms: number; count: number; now?: () => number }) {
  const subscriber = fakeSubscriber();
  const cancellations = new RequestCancellations(subscriber, 'cancels', createLogger('test', { level: 'error' }), remember);
  await cancellations.start();
  return { subscriber, cancellations };
}

describe('RequestCancellations', () => {
  it('aborts the running jobs of a cancelled request, and only those', async () => {
    const { subscriber, cancellations } = await started();
    const a = cancellations.track('req-a');
    const b = cancellations.track('req-b');
    subscriber.publish('req-a');
    expect(a.signal.aborted).toBe(true);
    expect((a.signal.reason as Error).name).toBe('AbortError');
    expect(b.signal.aborted).toBe(false);
    a.release();
    b.release();
    expect(cancellations.size).toBe(0);
  });

  it('a job of a request cancelled before its pick-up (or retried after the cancel) starts aborted', async () => {
    const { subscriber, cancellations } = await started();
    subscriber.publish('req-late');
    expect(cancellations.track('req-late').signal.aborted).toBe(true);
    expect(cancellations.track('req-other').signal.aborted).toBe(false);
  });

  it('forgets a cancel after rememberMs, and keeps at most rememberCount', async () => {
    let now = 1_000;
    const { subscriber, cancellations } = await started({ ms: 500, count: 2, now: () => now });
    subscriber.publish('old');
    now += 501;
    expect(cancellations.track('old').signal.aborted).toBe(false);
    for (const id of ['x', 'y', 'z']) subscriber.publish(id);
    expect(cancellations.track('x').signal.aborted).toBe(false);
    expect(cancellations.track('y').signal.aborted).toBe(true);
    expect(cancellations.track('z').signal.aborted).toBe(true);
  });
});
