import { describe, expect, it } from 'vitest';
import { EXPERT_JOB_LATENCY_BUCKETS_SECONDS, LATENCY_BUCKETS_SECONDS, METRICS, METRIC_NAMES } from './metric-catalogue';
import { ServiceMetrics } from './metrics';

describe('metric catalogue', () => {
  it('names every metric rsmoe_*, in base units, counters ending in _total', () => {
    for (const metric of Object.values(METRICS)) {
      expect(metric.name).toMatch(/^rsmoe_[a-z_]+$/);
      if (metric.type === 'counter') expect(metric.name).toMatch(/_total$/);
      else expect(metric.name).not.toMatch(/_total$/);
      if (/duration|wait|compute|time_to/.test(metric.name)) expect(metric.name).toMatch(/_seconds$/);
      expect(metric.name).not.toMatch(/_(ms|milliseconds)$/);
    }
    expect(new Set(METRIC_NAMES).size).toBe(METRIC_NAMES.length);
  });

  it('uses latency buckets from 1 ms to 60 s', () => {
    expect(LATENCY_BUCKETS_SECONDS[0]).toBe(0.001);
    expect(LATENCY_BUCKETS_SECONDS.at(-1)).toBe(60);
    expect([...LATENCY_BUCKETS_SECONDS].sort((a, b) => a - b)).toEqual([...LATENCY_BUCKETS_SECONDS]);
  });

  it('labels every expert series with expert, model and version', () => {
    for (const metric of Object.values(METRICS).filter((m) => m.service === 'expert')) {
      expect(metric.labelNames.slice(0, 3)).toEqual(['expert', 'model', 'version']);
    }
  });
});

describe('ServiceMetrics', () => {
  it('exposes a catalogue histogram with its labels and 1 ms–60 s buckets, plus process metrics', async () => {
    const metrics = new ServiceMetrics();
    metrics.get('expertQueueWait').observe({ expert: 'theme', model: 'm', version: '1' }, 0.004);
    const { body, contentType } = await metrics.expose();
    expect(contentType).toMatch(/^text\/plain/);
    expect(body).toContain('# TYPE rsmoe_expert_queue_wait_seconds histogram');
    expect(body).toContain('rsmoe_expert_queue_wait_seconds_bucket{le="0.001",expert="theme",model="m",version="1"} 0');
    expect(body).toContain('rsmoe_expert_queue_wait_seconds_bucket{le="0.005",expert="theme",model="m",version="1"} 1');
    expect(body).toContain('rsmoe_expert_queue_wait_seconds_bucket{le="60",expert="theme",model="m",version="1"} 1');
    expect(body).toContain('process_cpu_seconds_total');
  });

  it('gives the expert request histogram buckets of 120, 300 and 600 s above the others (masks take minutes)', async () => {
    expect(EXPERT_JOB_LATENCY_BUCKETS_SECONDS).toEqual([...LATENCY_BUCKETS_SECONDS, 120, 300, 600]);
    const metrics = new ServiceMetrics();
    metrics.get('expertRequestDuration').observe({ expert: 'theme', model: 'm', version: '1', task: 'segmentation' }, 200);
    const { body } = await metrics.expose();
    const bucket = (le: string) => new RegExp(`^rsmoe_expert_request_duration_seconds_bucket\\{le="${le}",[^}]*task="segmentation"\\} (\\d+)$`, 'm').exec(body)?.[1];
    expect([bucket('60'), bucket('120'), bucket('300'), bucket('600'), bucket('\\+Inf')]).toEqual(['0', '0', '1', '1', '1']);
  });

  it('returns the same metric on every get and refuses labels the catalogue does not name', () => {
    const metrics = new ServiceMetrics();
    expect(metrics.get('aggregatorResults')).toBe(metrics.get('aggregatorResults'));
    expect(() => metrics.get('aggregatorResults').inc({ task: 'caption', outcome: 'complete', extra: 'x' })).toThrow(/label/i);
  });

  it('runs a gauge collector on every scrape', async () => {
    const metrics = new ServiceMetrics();
    let scrapes = 0;
    metrics.get('queueJobs', (gauge) => {
      scrapes += 1;
      gauge.set({ queue: 'expert.theme', state: 'waiting' }, scrapes * 10);
    });
    await metrics.expose();
    const { body } = await metrics.expose();
    expect(body).toContain('rsmoe_queue_jobs{queue="expert.theme",state="waiting"} 20');
  });
});
