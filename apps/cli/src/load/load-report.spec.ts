import { describe, expect, it } from 'vitest';
import { formatLoadReport, summariseLoad, type LoadSample } from './load-report';

describe('summariseLoad', () => {
  // 100 answers: 90 ok (latencies 1..90 ms, 3 degraded), 8 × 429, 1 × 502, and one that never came.
  const samples: LoadSample[] = [
    ...Array.from({ length: 90 }, (_, i): LoadSample => ({ status: 200, latencyMs: i + 1, degraded: i < 3 })),
    ...Array.from({ length: 8 }, (): LoadSample => ({ status: 429, latencyMs: 0.5, errorCode: 'overloaded' })),
    { status: 502, latencyMs: 200, errorCode: 'experts_failed' },
    { status: 0, latencyMs: 60_000, errorCode: 'client_timeout' },
  ];

  it('gives throughput, nearest-rank percentiles and the status mix', () => {
    const summary = summariseLoad(samples, 10_000);
    expect(summary.sent).toBe(100);
    expect(summary.throughput).toBeCloseTo(9.9);
    expect(summary.okPerSecond).toBeCloseTo(9);
    expect(summary.okLatencyMs).toMatchObject({ count: 90, p50: 45, p95: 86, p99: 90 });
    // All answers: the 8 fast 429s come first, the 502 last; the unanswered one is left out.
    expect(summary.latencyMs).toMatchObject({ count: 99, p50: 42, p99: 200 });
    expect(summary.byStatus).toEqual({ '0': 1, '200': 90, '429': 8, '502': 1 });
    expect(summary.byErrorCode).toEqual({ client_timeout: 1, experts_failed: 1, overloaded: 8 });
    expect(summary.degraded).toBe(3);
    expect(summary.maxLatencyMs).toBe(200);
  });

  it('prints every number, and copes with no samples', () => {
    const text = formatLoadReport(summariseLoad(samples, 10_000), 'heading');
    expect(text).toContain('sent 100 in 10.0 s: 9.90 answers/s, 9.00 ok/s');
    expect(text).toContain('p50 45.0  p95 86.0  p99 90.0');
    expect(text).toContain('p99 200.0  mean 43.4  (n=99)  max 200.0');
    expect(text).toContain('status: 0 × 1, 200 × 90, 429 × 8, 502 × 1');
    expect(text).toContain('errors: client_timeout × 1, experts_failed × 1, overloaded × 8');
    expect(text).toContain('degraded: 3 of 90 ok');
    expect(formatLoadReport(summariseLoad([], 0), 'empty')).toContain('p50 -');
  });
});
