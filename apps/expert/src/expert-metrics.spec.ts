import { describe, expect, it } from 'vitest';
import type { ExpertJobResult } from '@rsmoe/contracts';
import { ServiceMetrics } from '@rsmoe/observability';
import { ExpertMetrics } from './expert-metrics';

const labels = { expert: 'theme', model: 'tiny-llava', version: '0.1.0' };
const series = '{expert="theme",model="tiny-llava",version="0.1.0"';

function output(overrides: Partial<ExpertJobResult> = {}): ExpertJobResult {
  return {
    expertId: 'theme',
    prompt: 'p',
    model: 'tiny-llava',
    text: 'a dense residential area',
    status: 'ok',
    promptTokens: 30,
    generatedTokens: 7,
    finishReason: 'eos',
    featuresCached: false,
    timings: { queueMs: 4, preprocessMs: 1, visionEncodeMs: 3, prefillMs: 2, decodeMs: 6, timeToFirstTokenMs: 7, computeMs: 12 },
    ...overrides,
  } as ExpertJobResult;
}

describe('ExpertMetrics', () => {
  it('records queue wait, request duration, compute by phase, TTFT, tokens and the feature-cache result', async () => {
    const metrics = new ServiceMetrics();
    const expert = new ExpertMetrics(metrics, labels);
    expert.output(output(), 'caption');
    expert.output(output({ featuresCached: true }), 'caption');
    const { body } = await metrics.expose();
    expect(body).toContain(`rsmoe_expert_jobs_total${series},status="ok"} 2`);
    expect(body).toContain(`rsmoe_expert_queue_wait_seconds_count${series}} 2`);
    expect(body).toContain(`rsmoe_expert_request_duration_seconds_sum${series},task="caption"} 0.032`);
    // Vision encode is observed only when the features were computed, not when they came from the cache.
    expect(body).toContain(`rsmoe_expert_compute_seconds_count${series},phase="vision_encode"} 1`);
    expect(body).toContain(`rsmoe_expert_compute_seconds_count${series},phase="decode"} 2`);
    expect(body).toContain(`rsmoe_expert_time_to_first_token_seconds_count${series}} 2`);
    expect(body).toContain(`rsmoe_expert_generated_tokens_total${series}} 14`);
    expect(body).toContain(`rsmoe_expert_feature_cache_lookups_total${series},result="hit"} 1`);
    expect(body).toContain(`rsmoe_expert_feature_cache_lookups_total${series},result="miss"} 1`);
  });

  it('counts dropped and failed jobs, tracks in-flight jobs and batch sizes', async () => {
    const metrics = new ServiceMetrics();
    const expert = new ExpertMetrics(metrics, labels);
    expert.output(output({ status: 'timed_out', generatedTokens: 0 }), 'segmentation');
    expert.error();
    expert.jobStarted();
    expert.jobStarted();
    expert.jobSettled();
    expert.batch(3);
    const { body } = await metrics.expose();
    expect(body).toContain(`rsmoe_expert_jobs_total${series},status="timed_out"} 1`);
    expect(body).toContain(`rsmoe_expert_jobs_total${series},status="error"} 1`);
    expect(body).toContain(`rsmoe_expert_jobs_total${series},status="ok"} 0`);
    expect(body).toContain(`rsmoe_expert_inflight_jobs${series}} 1`);
    expect(body).toContain(`rsmoe_expert_batch_size_bucket{le="2",expert="theme",model="tiny-llava",version="0.1.0"} 0`);
    expect(body).toContain(`rsmoe_expert_batch_size_bucket{le="4",expert="theme",model="tiny-llava",version="0.1.0"} 1`);
    // A dropped job computed nothing: it is not a request-duration sample.
    expect(body).not.toContain(`rsmoe_expert_request_duration_seconds_count${series}}`);
  });
});
