import type { ExpertId } from '@rsmoe/contracts';

/** One poll of one expert queue (ExpertQueueProbe in production). */
export interface QueueSample {
  /** Workers connected to the queue (BullMQ getWorkersCount: Redis CLIENT LIST, so a killed process drops out at once). */
  liveWorkers: number;
  /** Interactive jobs waiting: priority 0, BullMQ's `wait` list. */
  interactiveWaiting: number;
  /** Low-priority bulk jobs waiting: priority > 0, BullMQ's `prioritized` set. Never counted against interactive limits. */
  bulkWaiting: number;
  /** Jobs that finished (completed or failed) within the last drain window. */
  finishedInWindow: number;
}

/** What the router knows of one expert queue, as of its last successful poll. */
export interface ExpertCapacity extends QueueSample {
  expertId: ExpertId;
  /** Finished jobs per second over the drain window. */
  drainPerSecond: number;
  /**
   * Expected wait of a new interactive job, in ms: waiting / drain rate, once the queue has been backlogged
   * for a whole window (before that the rate measures demand, not capacity); 0 otherwise.
   */
  estimatedWaitMs: number;
  polledAtUnixMs: number;
}

/** Limits of the admission check (the router's config; defaults there). */
export interface AdmissionLimits {
  /** Most interactive jobs waiting on one expert queue before requests for it are refused (MAX_WAITING_PER_EXPERT). */
  maxWaitingPerExpert: number;
  /** The same for low-priority bulk jobs (MAX_BULK_WAITING_PER_EXPERT): their own budget. */
  maxBulkWaitingPerExpert: number;
  /**
   * Bulk yields to interactive traffic: while an expert has admitted an interactive request within `windowMs`
   * (BULK_YIELD_WINDOW_MS), this router keeps at most `maxInFlight` bulk requests on it (BULK_IN_FLIGHT_WHILE_INTERACTIVE);
   * the others are refused with Retry-After and retried by the scene worker. BullMQ's priority only orders
   * pick-up; on shared CPUs or a shared GPU a running tile still slows an interactive request down.
   */
  bulkYield?: { windowMs: number; maxInFlight: number };
}

/** What to do with a request for some experts. */
export type AdmissionDecision =
  /** Dispatch to `live`; `unavailable` are routed around (no live worker). */
  | { kind: 'admit'; live: ExpertId[]; unavailable: ExpertId[]; release?: () => void }
  /** No routed expert has a live worker. */
  | { kind: 'unavailable'; down: ExpertId[] }
  /** Refused before dispatching: a queue is over its limit, or its wait exceeds the request's budget. */
  | { kind: 'overloaded'; expertId: ExpertId; reason: 'queue_full' | 'queue_wait' | 'interactive_first'; retryAfterMs: number; message: string };

/** Least Retry-After we ever suggest, in ms. */
export const MIN_RETRY_AFTER_MS = 1_000;
/** Most Retry-After we ever suggest, in ms. */
export const MAX_RETRY_AFTER_MS = 60_000;

export interface ExpertCapacityOptions {
  expertIds: readonly ExpertId[];
  /** Polls one expert's queue; the window is the drain window in ms. */
  sample: (expertId: ExpertId, windowMs: number) => Promise<QueueSample>;
  /** Between polls, in ms (EXPERT_POLL_INTERVAL_MS). */
  intervalMs: number;
  /** Drain-rate window, in ms (EXPERT_DRAIN_WINDOW_MS). */
  windowMs: number;
  /**
   * After this many ms without a successful poll (Redis away) the cache is stale and every expert counts as
   * live again: a stale zero must not refuse traffic once Redis is back.
   */
  staleAfterMs: number;
  limits: AdmissionLimits;
  /** Told the first failed poll of an outage (Redis away fails every poll: told once, not once per poll). */
  onPollError?: (expertId: ExpertId, error: unknown) => void;
  now?: () => number;
}

/**
 * Which expert queues have live workers and how backed up they are, polled in one background loop for all
 * experts and cached (never per request), and the admission decision taken from that cache. Plain
 * TypeScript: the queue probe is its only edge.
 */
export class ExpertCapacityService {
  private readonly capacities = new Map<ExpertId, ExpertCapacity>();
  /** Since when each queue has had interactive jobs waiting at every poll (absent: not backlogged). */
  private readonly backloggedSince = new Map<ExpertId, number>();
  /** When each expert last admitted an interactive request (bulkYield). */
  private readonly lastInteractiveAt = new Map<ExpertId, number>();
  /** Bulk requests this router has in flight per expert (admitted, not yet released). */
  private readonly bulkInFlight = new Map<ExpertId, number>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly options: ExpertCapacityOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Starts the loop (first poll at once). Polls never overlap: a slow one delays the next. */
  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      this.polling = this.pollOnce().finally(() => {
        this.polling = undefined;
        if (this.timer) this.timer = setTimeout(tick, this.options.intervalMs).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  /** Stops the loop; waits for a poll in flight at most `waitMs` (a poll hangs while Redis is away). */
  async stop(waitMs = 1_000): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([this.polling, new Promise<void>((resolve) => (timeout = setTimeout(resolve, waitMs).unref()))]);
    clearTimeout(timeout);
  }

  /** Polls every expert queue once and updates the cache (a failed poll keeps that expert's last entry). */
  async pollOnce(): Promise<void> {
    const { windowMs } = this.options;
    let failed = false;
    await Promise.all(
      this.options.expertIds.map(async (expertId) => {
        let sample: QueueSample;
        try {
          sample = await this.options.sample(expertId, windowMs);
        } catch (error) {
          if (!this.failing && !failed) this.options.onPollError?.(expertId, error);
          failed = true;
          return;
        }
        const now = this.now();
        if (sample.interactiveWaiting === 0) this.backloggedSince.delete(expertId);
        else if (!this.backloggedSince.has(expertId)) this.backloggedSince.set(expertId, now);
        const since = this.backloggedSince.get(expertId);
        const drainPerSecond = sample.finishedInWindow / (windowMs / 1000);
        const backlogged = since !== undefined && now - since >= windowMs;
        const estimatedWaitMs = backlogged ? (drainPerSecond > 0 ? (sample.interactiveWaiting / drainPerSecond) * 1000 : Number.POSITIVE_INFINITY) : 0;
        this.capacities.set(expertId, { expertId, ...sample, drainPerSecond, estimatedWaitMs, polledAtUnixMs: now });
      }),
    );
    this.failing = failed;
  }

  /** The last fresh poll of an expert; undefined before the first one and once stale. */
  capacity(expertId: ExpertId): ExpertCapacity | undefined {
    const entry = this.capacities.get(expertId);
    if (!entry || this.now() - entry.polledAtUnixMs > this.options.staleAfterMs) return undefined;
    return entry;
  }

  /** Every expert's fresh capacity, in the order given at construction (unknown ones left out). */
  snapshot(): ExpertCapacity[] {
    return this.options.expertIds.flatMap((id) => {
      const entry = this.capacity(id);
      return entry ? [entry] : [];
    });
  }

  /**
   * Decides a request for `expertIds` with `remainingMs` until its fuse point. An expert with no fresh poll
   * counts as live and unloaded (an unknown is not a refusal). Dead experts are routed around; a live one
   * over its waiting limit, or whose expected wait exceeds the budget, refuses the whole request.
   */
  admit(expertIds: readonly ExpertId[], request: { remainingMs: number; priority?: 'interactive' | 'bulk' }): AdmissionDecision {
    const down = expertIds.filter((id) => this.capacity(id)?.liveWorkers === 0);
    if (down.length === expertIds.length && down.length > 0) return { kind: 'unavailable', down };
    const live = expertIds.filter((id) => !down.includes(id));
    const bulk = request.priority === 'bulk';
    for (const expertId of live) {
      const entry = this.capacity(expertId);
      if (!entry) continue;
      const waiting = bulk ? entry.bulkWaiting : entry.interactiveWaiting;
      const limit = bulk ? this.options.limits.maxBulkWaitingPerExpert : this.options.limits.maxWaitingPerExpert;
      if (waiting >= limit) {
        const excess = waiting - limit + 1;
        return {
          kind: 'overloaded',
          expertId,
          reason: 'queue_full',
          retryAfterMs: retryAfter(entry.drainPerSecond > 0 ? (excess / entry.drainPerSecond) * 1000 : this.options.windowMs),
          message: `expert ${expertId} has ${waiting} ${bulk ? 'bulk' : 'interactive'} jobs waiting (limit ${limit})`,
        };
      }
      if (!bulk && entry.estimatedWaitMs > request.remainingMs) {
        const wait = entry.estimatedWaitMs;
        return {
          kind: 'overloaded',
          expertId,
          reason: 'queue_wait',
          retryAfterMs: retryAfter(Number.isFinite(wait) ? wait - request.remainingMs : this.options.windowMs),
          message: `expert ${expertId}'s queue wait (${Number.isFinite(wait) ? `~${Math.round(wait)} ms` : 'not draining'}) exceeds the request's remaining ${Math.round(request.remainingMs)} ms`,
        };
      }
    }
    if (!bulk) {
      for (const expertId of live) this.lastInteractiveAt.set(expertId, this.now());
      return { kind: 'admit', live, unavailable: down };
    }
    const yielding = this.options.limits.bulkYield;
    if (yielding) {
      const busy = live.find(
        (id) => this.now() - (this.lastInteractiveAt.get(id) ?? -Infinity) < yielding.windowMs && (this.bulkInFlight.get(id) ?? 0) >= yielding.maxInFlight,
      );
      if (busy !== undefined) {
        return {
          kind: 'overloaded',
          expertId: busy,
          reason: 'interactive_first',
          retryAfterMs: retryAfter(yielding.windowMs),
          message: `expert ${busy} serves interactive requests: at most ${yielding.maxInFlight} bulk request${yielding.maxInFlight === 1 ? '' : 's'} at once until ${yielding.windowMs} ms without one`,
        };
      }
    }
    for (const id of live) this.bulkInFlight.set(id, (this.bulkInFlight.get(id) ?? 0) + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      for (const id of live) this.bulkInFlight.set(id, Math.max(0, (this.bulkInFlight.get(id) ?? 1) - 1));
    };
    return { kind: 'admit', live, unavailable: down, release };
  }
}

function retryAfter(ms: number): number {
  return Math.round(Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, ms)));
}
