import { describe, expect, it } from 'vitest';
import { ExpertCapacityService, MIN_RETRY_AFTER_MS, type QueueSample } from './expert-capacity.service';

const IDLE: QueueSample = { liveWorkers: 1, interactiveWaiting: 0, bulkWaiting: 0, finishedInWindow: 0 };

function harness(samples: Record<string, Partial<QueueSample> | Error>, options: { maxWaiting?: number; staleAfterMs?: number; bulkYield?: { windowMs: number; maxInFlight: number } } = {}) {
  let now = 1_000_000;
  const polled: string[] = [];
  const errors: string[] = [];
  const service = new ExpertCapacityService({
    expertIds: ['theme', 'object', 'relation'],
    sample: async (expertId) => {
      polled.push(expertId);
      const sample = samples[expertId];
      if (sample instanceof Error) throw sample;
      return { ...IDLE, ...sample };
    },
    intervalMs: 1_000,
    windowMs: 10_000,
    staleAfterMs: options.staleAfterMs ?? 3_000,
    limits: { maxWaitingPerExpert: options.maxWaiting ?? 64, maxBulkWaitingPerExpert: 100, ...(options.bulkYield ? { bulkYield: options.bulkYield } : {}) },
    onPollError: (expertId) => void errors.push(expertId),
    now: () => now,
  });
  return { service, polled, errors, advance: (ms: number) => (now += ms) };
}

describe('ExpertCapacityService', () => {
  it('counts every expert as live before the first poll (an unknown is never a refusal)', () => {
    const { service } = harness({});
    expect(service.admit(['theme', 'object'], { remainingMs: 100 })).toEqual({ kind: 'admit', live: ['theme', 'object'], unavailable: [] });
  });

  it('routes around an expert whose queue has no live worker', async () => {
    const { service } = harness({ object: { liveWorkers: 0 } });
    await service.pollOnce();
    expect(service.admit(['theme', 'object', 'relation'], { remainingMs: 10_000 })).toEqual({ kind: 'admit', live: ['theme', 'relation'], unavailable: ['object'] });
    expect(service.capacity('object')).toMatchObject({ liveWorkers: 0 });
  });

  it('answers unavailable, naming them, when no routed expert is alive', async () => {
    const { service } = harness({ theme: { liveWorkers: 0 }, object: { liveWorkers: 0 } });
    await service.pollOnce();
    expect(service.admit(['theme', 'object'], { remainingMs: 10_000 })).toEqual({ kind: 'unavailable', down: ['theme', 'object'] });
    // relation is alive: a request routed to it alone is admitted
    expect(service.admit(['relation'], { remainingMs: 10_000 }).kind).toBe('admit');
  });

  it('refuses a request for an expert at its waiting limit, with a Retry-After from the drain rate', async () => {
    // 64 waiting, limit 64, 20 finished in the 10 s window: 2 jobs/s, 1 job over the limit → 500 ms, at least 1 s
    const { service } = harness({ object: { interactiveWaiting: 64, finishedInWindow: 20 } });
    await service.pollOnce();
    expect(service.admit(['theme', 'object'], { remainingMs: 60_000 })).toEqual({
      kind: 'overloaded',
      expertId: 'object',
      reason: 'queue_full',
      retryAfterMs: MIN_RETRY_AFTER_MS,
      message: 'expert object has 64 interactive jobs waiting (limit 64)',
    });
    const busier = harness({ object: { interactiveWaiting: 80, finishedInWindow: 20 } });
    await busier.service.pollOnce();
    // 17 over the limit at 2 jobs/s
    expect(busier.service.admit(['object'], { remainingMs: 60_000 })).toMatchObject({ kind: 'overloaded', retryAfterMs: 8_500 });
  });

  it('never counts low-priority bulk jobs against interactive requests, and gives bulk its own budget', async () => {
    const { service } = harness({ object: { bulkWaiting: 5_000 } });
    await service.pollOnce();
    expect(service.admit(['object'], { remainingMs: 60_000 }).kind).toBe('admit');
    expect(service.admit(['object'], { remainingMs: 60_000, priority: 'bulk' })).toMatchObject({ kind: 'overloaded', message: expect.stringContaining('5000 bulk jobs') });
  });

  it('refuses up front a request whose budget is shorter than the queue wait, once the queue has been backlogged for a window', async () => {
    // 30 waiting, 10 finished in 10 s: 1 job/s, so ~30 s of wait
    const { service, advance } = harness({ theme: { interactiveWaiting: 30, finishedInWindow: 10 } });
    await service.pollOnce();
    // Backlogged for less than a window: the rate measures demand, not capacity; nothing refused yet.
    expect(service.admit(['theme'], { remainingMs: 5_000 }).kind).toBe('admit');
    expect(service.capacity('theme')?.estimatedWaitMs).toBe(0);
    advance(10_000);
    await service.pollOnce();
    expect(service.capacity('theme')?.estimatedWaitMs).toBe(30_000);
    expect(service.admit(['theme'], { remainingMs: 5_000 })).toMatchObject({ kind: 'overloaded', expertId: 'theme', reason: 'queue_wait', retryAfterMs: 25_000 });
    expect(service.admit(['theme'], { remainingMs: 40_000 }).kind).toBe('admit');
  });

  it('forgets a backlog as soon as the queue is empty', async () => {
    const samples: Record<string, Partial<QueueSample>> = { theme: { interactiveWaiting: 30, finishedInWindow: 10 } };
    const { service, advance } = harness(samples);
    await service.pollOnce();
    advance(10_000);
    samples.theme = { interactiveWaiting: 0, finishedInWindow: 10 };
    await service.pollOnce();
    samples.theme = { interactiveWaiting: 30, finishedInWindow: 10 };
    await service.pollOnce();
    expect(service.admit(['theme'], { remainingMs: 5_000 }).kind).toBe('admit');
  });

  it('keeps the last answer through a failed poll, reports an outage once, and counts experts live again once stale', async () => {
    const samples: Record<string, Partial<QueueSample> | Error> = { object: { liveWorkers: 0 } };
    const { service, errors, advance } = harness(samples);
    await service.pollOnce();
    samples.object = new Error('connection lost');
    samples.theme = new Error('connection lost');
    await service.pollOnce();
    await service.pollOnce();
    expect(errors).toHaveLength(1);
    expect(service.admit(['object', 'theme'], { remainingMs: 10_000 })).toMatchObject({ unavailable: ['object'] });
    advance(3_001);
    expect(service.admit(['object', 'theme'], { remainingMs: 10_000 })).toEqual({ kind: 'admit', live: ['object', 'theme'], unavailable: [] });
    expect(service.snapshot()).toEqual([]);
  });

  it('polls in one background loop for every expert, not per request', async () => {
    const { service, polled } = harness({});
    service.start();
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < 100; i++) service.admit(['theme', 'object', 'relation'], { remainingMs: 10_000 });
    await service.stop();
    expect(polled.sort()).toEqual(['object', 'relation', 'theme']);
  });

  it('bulk yields to interactive traffic: one bulk request at a time on an expert that served an interactive one within the window', () => {
    const { service, advance } = harness({}, { bulkYield: { windowMs: 2_000, maxInFlight: 1 } });
    const bulk = () => service.admit(['theme'], { remainingMs: 60_000, priority: 'bulk' });
    // No interactive traffic: bulk is not held back.
    const quiet = [bulk(), bulk(), bulk()];
    expect(quiet.map((decision) => decision.kind)).toEqual(['admit', 'admit', 'admit']);
    for (const decision of quiet) if (decision.kind === 'admit') decision.release?.();
    expect(service.admit(['theme'], { remainingMs: 60_000 }).kind).toBe('admit');
    const first = bulk();
    expect(first.kind).toBe('admit');
    expect(bulk()).toMatchObject({ kind: 'overloaded', expertId: 'theme', reason: 'interactive_first', retryAfterMs: 2_000 });
    // Another expert saw no interactive request: its bulk goes on.
    expect(service.admit(['object'], { remainingMs: 60_000, priority: 'bulk' }).kind).toBe('admit');
    // The bulk request in flight ends: the next one may go (released twice counts once).
    if (first.kind === 'admit') {
      first.release?.();
      first.release?.();
    }
    const second = bulk();
    expect(second.kind).toBe('admit');
    expect(bulk().kind).toBe('overloaded');
    // Once the window passes without an interactive request, bulk runs at full width again.
    advance(2_001);
    expect(bulk().kind).toBe('admit');
    expect(bulk().kind).toBe('admit');
  });
});
