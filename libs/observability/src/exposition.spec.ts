import { describe, expect, it } from 'vitest';
import { parseExposition } from './exposition';

describe('parseExposition', () => {
  it('reads every sample with its labels (escapes undone), skipping comments and blank lines', () => {
    const text = [
      '# HELP rsmoe_expert_batch_size Jobs per generation call.',
      '# TYPE rsmoe_expert_batch_size histogram',
      'rsmoe_expert_batch_size_sum{expert="theme",model="m \\"q\\"\\nx"} 1500',
      'rsmoe_expert_batch_size_count{expert="theme",model="m"} 203 1733500000000',
      'process_cpu_seconds_total 1.25',
      '',
    ].join('\n');
    expect(parseExposition(text)).toEqual([
      { name: 'rsmoe_expert_batch_size_sum', labels: { expert: 'theme', model: 'm "q"\nx' }, value: 1500 },
      { name: 'rsmoe_expert_batch_size_count', labels: { expert: 'theme', model: 'm' }, value: 203 },
      { name: 'process_cpu_seconds_total', labels: {}, value: 1.25 },
    ]);
  });

  it('refuses a line that is not a sample', () => {
    expect(() => parseExposition('not a metric line at all {')).toThrow(/not a sample line/);
  });
});
