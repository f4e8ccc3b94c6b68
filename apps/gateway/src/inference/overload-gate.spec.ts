import { describe, expect, it } from 'vitest';
import { MAX_OVERLOAD_WINDOW_MS, OverloadGate } from './overload-gate';

describe('OverloadGate', () => {
  it('refuses a task until the router’s retry-after has passed, per task, keeping the later of two windows', () => {
    let now = 1_000;
    const gate = new OverloadGate(() => now);
    expect(gate.retryAfterMs('caption')).toBeUndefined();
    gate.refuse('caption', 1_500);
    expect(gate.retryAfterMs('caption')).toBe(1_500);
    expect(gate.retryAfterMs('vqa')).toBeUndefined();
    gate.refuse('caption', 200);
    now += 1_000;
    expect(gate.retryAfterMs('caption')).toBe(500);
    now += 500;
    expect(gate.retryAfterMs('caption')).toBeUndefined();
  });

  it('caps one window at MAX_OVERLOAD_WINDOW_MS and ignores negative values', () => {
    const now = 0;
    const gate = new OverloadGate(() => now);
    gate.refuse('vqa', 10 * MAX_OVERLOAD_WINDOW_MS);
    expect(gate.retryAfterMs('vqa')).toBe(MAX_OVERLOAD_WINDOW_MS);
    gate.refuse('caption', -5);
    expect(gate.retryAfterMs('caption')).toBeUndefined();
  });
});
