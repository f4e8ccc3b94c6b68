import { describe, expect, it } from 'vitest';
import { DEFAULT_RESTART_POLICY, RestartBackoff } from './restart-backoff';

describe('RestartBackoff', () => {
  it('doubles from 0.5 s to at most 10 s for crashes in a row, and reports a crash loop from the 5th', () => {
    let now = 0;
    const backoff = new RestartBackoff(DEFAULT_RESTART_POLICY, () => now);
    const decisions = [];
    for (let crash = 0; crash < 7; crash++) {
      now += 1_000;
      decisions.push(backoff.crashed());
      backoff.started();
    }
    expect(decisions.map((decision) => decision.delayMs)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    expect(decisions.map((decision) => decision.crashLoop)).toEqual([false, false, false, false, true, true, true]);
    expect(decisions.at(-1)?.crashesInARow).toBe(7);
  });

  it('starts over after a stable minute', () => {
    let now = 0;
    const backoff = new RestartBackoff(DEFAULT_RESTART_POLICY, () => now);
    backoff.crashed();
    backoff.started();
    now += 59_999;
    expect(backoff.crashed()).toMatchObject({ delayMs: 1_000, crashesInARow: 2 });
    backoff.started();
    now += 60_000;
    expect(backoff.crashed()).toEqual({ delayMs: 500, crashesInARow: 1, crashLoop: false });
  });
});
