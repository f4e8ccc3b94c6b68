/** How `rsmoe start` restarts a service that exits on its own (a crash, a kill -9, an OOM kill). */
export interface RestartPolicy {
  /** Delay before the first restart, in ms; doubled for each crash in a row. Default 500. */
  initialDelayMs: number;
  /** Longest delay between restarts, in ms. Default 10 000. */
  maxDelayMs: number;
  /** A service that ran this long before exiting is stable again: its delay starts over, in ms. Default 60 000. */
  stableAfterMs: number;
  /**
   * From this many crashes in a row (each within stableAfterMs of its start) every restart is reported as
   * an error: the service is crash-looping. It keeps being retried at maxDelayMs (a dependency such as
   * Redis or a GPU may come back); stop it with Ctrl-C. Default 5.
   */
  loudAfterCrashes: number;
}

export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicy> = Object.freeze({
  initialDelayMs: 500,
  maxDelayMs: 10_000,
  stableAfterMs: 60_000,
  loudAfterCrashes: 5,
});

/** What to do after one exit: wait `delayMs`, then restart; `crashLoop` when the service keeps crashing. */
export interface RestartDecision {
  delayMs: number;
  /** Crashes in a row, this one included. */
  crashesInARow: number;
  crashLoop: boolean;
}

/** The exponential backoff of one service: 0.5 s, 1 s, 2 s, ... up to 10 s; reset after a stable minute. */
export class RestartBackoff {
  private crashes = 0;
  private startedAt: number;

  constructor(
    private readonly policy: RestartPolicy = DEFAULT_RESTART_POLICY,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  /** The service (re)started now. */
  started(): void {
    this.startedAt = this.now();
  }

  /** The service exited on its own now: when to restart it. */
  crashed(): RestartDecision {
    if (this.now() - this.startedAt >= this.policy.stableAfterMs) this.crashes = 0;
    this.crashes += 1;
    const delayMs = Math.min(this.policy.initialDelayMs * 2 ** (this.crashes - 1), this.policy.maxDelayMs);
    return { delayMs, crashesInARow: this.crashes, crashLoop: this.crashes >= this.policy.loudAfterCrashes };
  }
}
