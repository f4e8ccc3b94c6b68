import { describe, expect, it } from 'vitest';
import { StoppingCriteria, interruptReasonOf } from './stopping-criteria';

const decode = (ids: readonly number[]) => ids.map((id) => String.fromCharCode(96 + id)).join('');

describe('StoppingCriteria', () => {
  const criteria = new StoppingCriteria(new Set([0]), ['cd'], 5, decode);

  it('stops on EOS, on a stop string, and at the budget, in that order', () => {
    expect(criteria.check([1, 2])).toBeUndefined();
    expect(criteria.check([1, 0])).toBe('eos');
    expect(criteria.check([2, 3, 4])).toBe('stop_string');
    expect(criteria.check([1, 1, 1, 1, 1])).toBe('length');
  });

  it('cuts the text before the stop string only when it stopped the sequence', () => {
    expect(criteria.finalText([1, 3, 4], 'stop_string')).toBe('a');
    expect(criteria.finalText([1, 3, 4], 'length')).toBe('acd');
  });
});

describe('StoppingCriteria: deadline and cancellation', () => {
  const timeout = () => Object.assign(new Error('past the deadline'), { name: 'TimeoutError' });

  it('stops at the deadline, checked on the clock with no timer', () => {
    let now = 1_000;
    const criteria = new StoppingCriteria(new Set([0]), [], 50, decode, { deadlineUnixMs: 1_010, now: () => now });
    expect(criteria.check([1])).toBeUndefined();
    now = 1_010;
    expect(criteria.check([1, 2])).toBe('deadline');
    expect(criteria.interrupted()).toBe('deadline');
  });

  it('stops on abort: a timeout reason is the deadline, any other reason a cancel', () => {
    const controller = new AbortController();
    const criteria = new StoppingCriteria(new Set([0]), [], 50, decode, { signal: controller.signal });
    expect(criteria.check([1])).toBeUndefined();
    controller.abort(new Error('client went away'));
    expect(criteria.check([1, 2])).toBe('cancelled');

    const timedOut = new AbortController();
    timedOut.abort(timeout());
    expect(new StoppingCriteria(new Set(), [], 50, decode, { signal: timedOut.signal }).check([1])).toBe('deadline');
    expect(interruptReasonOf(AbortSignal.abort())).toBe('cancelled');
  });

  it("lets a sequence's own end win over an interruption at the same step", () => {
    const controller = new AbortController();
    controller.abort();
    const criteria = new StoppingCriteria(new Set([0]), ['cd'], 3, decode, { signal: controller.signal });
    expect(criteria.check([1, 0])).toBe('eos');
    expect(criteria.check([3, 4])).toBe('stop_string');
    expect(criteria.check([1, 1, 1])).toBe('length');
    expect(criteria.check([1])).toBe('cancelled');
    expect(criteria.finalText([1, 2], 'cancelled')).toBe('ab');
  });
});

describe('StoppingCriteria: the clock wins over the signal reason', () => {
  it('reads a cancel-looking abort at or past the deadline as the deadline', () => {
    const controller = new AbortController();
    controller.abort(new Error('the worker is closing'));
    let now = 99;
    const criteria = new StoppingCriteria(new Set(), [], 50, decode, { signal: controller.signal, deadlineUnixMs: 100, now: () => now });
    expect(criteria.interrupted()).toBe('cancelled');
    now = 100;
    expect(criteria.interrupted()).toBe('deadline');
  });
});
