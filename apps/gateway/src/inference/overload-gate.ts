import type { Task } from '@rsmoe/contracts';

/** Longest refusal window the gateway keeps from one router answer, in ms (a bogus retry-after cannot shut a task for long). */
export const MAX_OVERLOAD_WINDOW_MS = 60_000;

/**
 * Remembers "task X is overloaded until T" after the router refused a request of that task with a
 * `retry-after-ms`, so the gateway can refuse further requests of the task with 429 before reading their
 * bodies (no upload, no blob write, no router call while the mesh is full). Plain TypeScript; the clock
 * is injectable for tests.
 */
export class OverloadGate {
  private readonly until = new Map<Task, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The router refused a request of `task` and asked for `retryAfterMs` of quiet. */
  refuse(task: Task, retryAfterMs: number): void {
    const until = this.now() + Math.min(Math.max(0, retryAfterMs), MAX_OVERLOAD_WINDOW_MS);
    if (until > (this.until.get(task) ?? 0)) this.until.set(task, until);
  }

  /** How long requests of `task` are still refused, in ms; undefined when they are let through. */
  retryAfterMs(task: Task): number | undefined {
    const until = this.until.get(task);
    if (until === undefined) return undefined;
    const left = until - this.now();
    if (left > 0) return left;
    this.until.delete(task);
    return undefined;
  }
}
