import { describe, expect, it } from 'vitest';
import { StoppingCriteria } from './stopping-criteria';

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
