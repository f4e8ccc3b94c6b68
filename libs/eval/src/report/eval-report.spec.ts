import { describe, expect, it } from 'vitest';
import { buildCaptionReport, buildVqaReport, renderReportMarkdown, type EvalRecord } from './eval-report';
import { percentile, summarizeLatencies } from './latency';

describe('latency percentiles', () => {
  it('uses nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    expect(summarizeLatencies(values)).toMatchObject({ count: 100, p50: 50, p90: 90, p95: 95, p99: 99, mean: 50.5 });
    expect(percentile([7], 99)).toBe(7);
    expect(summarizeLatencies([]).p50).toBeNull();
  });
});

describe('reports', () => {
  const ok = (id: string, output: string, ms: number): EvalRecord => ({ id, status: 'ok', output, clientMs: ms, serverMs: ms - 1 });
  it('builds a caption report with a per-class breakdown and failures', () => {
    const samples = [
      { id: '1', image: '1.tif', references: ['a lake'], category: 'lake' },
      { id: '2', image: '2.tif', references: ['a road'], category: 'road' },
      { id: '3', image: '3.tif', references: ['a lake'], category: 'lake' },
    ];
    const records: EvalRecord[] = [ok('1', 'a lake', 10), ok('2', 'a road', 20), { id: '3', status: 'failed', clientMs: 5, error: { code: 'internal', message: 'boom' } }];
    const report = buildCaptionReport('karpathy:x.json', samples, records);
    expect(report).toMatchObject({ samples: 3, succeeded: 2, failed: 1, failures: [{ id: '3', code: 'internal', message: 'boom' }] });
    expect(report.metrics?.Bleu_1).toBeCloseTo(1, 6);
    expect(Object.keys(report.perCategory)).toEqual(['lake', 'road']);
    expect(report.latency.clientMs).toMatchObject({ count: 3, p50: 10, p99: 20 });
    expect(report.latency.serverMs).toMatchObject({ count: 2, p50: 9 });
    const md = renderReportMarkdown(report);
    expect(md).toContain('| Bleu_1 | Bleu_2 | Bleu_3 | Bleu_4 | METEOR | ROUGE_L | CIDEr |');
    expect(md).toContain('| lake | 1 |');
    expect(md).toContain('| 3 | internal | boom |');
  });

  it('builds a VQA report per question type', () => {
    const samples = [
      { id: 'q1', image: '0.tif', question: 'Is there a road?', answers: ['yes'], type: 'presence' },
      { id: 'q2', image: '0.tif', question: 'How many?', answers: ['3'], type: 'count' },
    ];
    const report = buildVqaReport('rsvqa:x', samples, [ok('q1', 'Yes', 3), ok('q2', '4', 4)]);
    expect(report.accuracy).toMatchObject({ averageAccuracy: 0.5, overallAccuracy: 0.5 });
    expect(renderReportMarkdown(report)).toContain('| presence | 1 | 1 | 100.00 |');
  });
});
