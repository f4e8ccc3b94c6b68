// Every service of a real mesh serves /metrics and its health; after real traffic, the catalogue series
// carry the labels the dashboard, the alert rules and the autoscaler query.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TASKS, createRedisKeys } from '@rsmoe/contracts';
import { METRICS, type MetricDefinition } from '@rsmoe/observability';
import { ApiKeyRegistry } from '../../apps/cli/src/keys/api-key-registry';
import { demoOnlyExpertIds } from '../deploy/deploy-support';
import { postImage, startMesh, testImage, type RunningMesh } from './mesh-fixture';
import { parseExposition, type Sample } from '@rsmoe/observability';
import { EXTERNAL_METRICS, TARGET_LABELS, collectMonitoringQueries, describeSource, extractMetricSelectors } from '../support/promql';

const DEMO_ONLY_QUEUES = demoOnlyExpertIds().map((id) => `expert.${id}`);

describe('metrics of the running mesh', { timeout: 60_000 }, () => {
  let mesh: RunningMesh;
  const scrapes = new Map<string, Sample[]>();

  beforeAll(async () => {
    // With API keys on, as a cluster runs: the key metrics are series too.
    mesh = await startMesh({}, undefined, { authMode: 'required' });
    const { secret } = await new ApiKeyRegistry(mesh.redis, createRedisKeys(mesh.prefix)).create({
      name: 'metrics-e2e',
      ratePerSecond: 100,
      burst: 100,
      dailyQuota: 1000,
      tasks: [...TASKS],
    });
    const key = { Authorization: `Bearer ${secret}` };
    const image = await testImage(71);
    expect((await postImage(mesh.url, '/v1/captions', image, {}, key)).status).toBe(200);
    expect((await postImage(mesh.url, '/v1/captions', image, {}, key)).status).toBe(200);
    expect((await postImage(mesh.url, '/v1/vqa', image, { question: 'how many buildings are there ?' }, key)).status).toBe(200);
    expect((await postImage(mesh.url, '/v1/vqa', image, {}, key)).status).toBe(400);
    // A service records a request just after answering it: scrape until the 7 expert jobs (2 captions × 3
    // experts + 1 question), the 4 HTTP requests and the 3 stored results are all counted, for at most 5 s.
    const total = (name: string, service?: string) =>
      [...scrapes].filter(([s]) => !service || s === service).flatMap(([, samples]) => samples.filter((x) => x.name === name)).reduce((sum, x) => sum + x.value, 0);
    for (const until = Date.now() + 5_000; ; ) {
      for (const [service, url] of Object.entries(mesh.mesh.metricsUrls)) {
        const response = await fetch(`${url}/metrics`);
        expect(response.status, service).toBe(200);
        scrapes.set(service, parseExposition(await response.text()));
      }
      const settled =
        total('rsmoe_expert_jobs_total') === 7 &&
        total('rsmoe_http_request_duration_seconds_count', 'gateway') === 4 &&
        total('rsmoe_aggregator_results_total') + total('rsmoe_router_fused_results_total') === 3;
      if (settled || Date.now() > until) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  afterAll(async () => {
    await mesh?.stop();
  });

  const samplesOf = (service: string, name: string): Sample[] => (scrapes.get(service) ?? []).filter((s) => s.name === name);
  const servicesOf = (definition: MetricDefinition): string[] =>
    definition.service === 'expert' ? mesh.manifest.experts.map((e) => `expert.${e.id}`) : [definition.service];

  it('serves /metrics on every service, with its catalogue metrics and their labels', () => {
    expect([...scrapes.keys()].sort()).toEqual(mesh.mesh.serviceNames.sort());
    for (const definition of Object.values(METRICS) as MetricDefinition[]) {
      for (const service of servicesOf(definition)) {
        const name = definition.type === 'histogram' ? `${definition.name}_count` : definition.name;
        const samples = samplesOf(service, name);
        expect(samples.length, `${name} on ${service}`).toBeGreaterThan(0);
        for (const sample of samples) expect(Object.keys(sample.labels).sort(), `${name} on ${service}`).toEqual([...definition.labelNames].sort());
      }
    }
  });

  it('counts what the traffic did', () => {
    const theme = { expert: 'theme', model: 'tiny-llava', version: mesh.manifest.version };
    const value = (service: string, name: string, labels: Record<string, string>): number =>
      samplesOf(service, name)
        .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0);
    // Two captions reach theme; the count question goes to object only.
    expect(value('expert.theme', 'rsmoe_expert_jobs_total', { ...theme, status: 'ok' })).toBe(2);
    expect(value('expert.object', 'rsmoe_expert_jobs_total', { expert: 'object', status: 'ok' })).toBe(3);
    expect(value('expert.theme', 'rsmoe_expert_feature_cache_lookups_total', { ...theme, result: 'hit' })
      + value('expert.theme', 'rsmoe_expert_feature_cache_lookups_total', { ...theme, result: 'miss' })).toBe(2);
    expect(value('expert.theme', 'rsmoe_expert_generated_tokens_total', theme)).toBeGreaterThan(0);
    expect(value('expert.theme', 'rsmoe_expert_inflight_jobs', theme)).toBe(0);
    expect(value('gateway', 'rsmoe_http_request_duration_seconds_count', { route: '/v1/captions', status: '200', method: 'POST' })).toBe(2);
    expect(value('gateway', 'rsmoe_http_request_duration_seconds_count', { route: '/v1/vqa', status: '400' })).toBe(1);
    expect(value('router', 'rsmoe_grpc_request_duration_seconds_count', { method: 'Caption', code: 'OK' })).toBe(2);
    expect(value('router', 'rsmoe_grpc_request_duration_seconds_count', { method: 'Answer', code: 'OK' })).toBe(1);
    expect(value('router', 'rsmoe_router_expert_selections_total', { expert: 'relation', task: 'vqa' })).toBe(0);
    expect(value('router', 'rsmoe_router_experts_chosen_sum', { task: 'caption' })).toBe(6);
    expect(value('router', 'rsmoe_queue_jobs', { queue: 'expert.theme', state: 'waiting' })).toBe(0);
    // Complete results are fused by the router (fast path) or, when it loses the race, by the aggregator.
    expect(
      value('aggregator', 'rsmoe_aggregator_results_total', { task: 'caption', outcome: 'complete' }) +
        value('router', 'rsmoe_router_fused_results_total', { task: 'caption' }),
    ).toBe(2);
    expect(value('aggregator', 'rsmoe_aggregator_results_total', { outcome: 'degraded' })).toBe(0);
  });

  it('exports every series the dashboard, the alert rules and the autoscaler query, with the labels they use', () => {
    const all = [...scrapes.values()].flat();
    const problems: string[] = [];
    const queries = collectMonitoringQueries();
    expect(queries.length).toBeGreaterThan(20);
    for (const query of queries) {
      for (const selector of extractMetricSelectors(query.promql)) {
        if (selector.metric in EXTERNAL_METRICS) continue;
        const samples = all.filter((sample) => sample.name === selector.metric);
        if (samples.length === 0) {
          problems.push(`${describeSource(query.source)}: no series ${selector.metric} in any scrape`);
          continue;
        }
        const used = new Set([...selector.labels, ...selector.byLabels].filter((label) => !TARGET_LABELS.includes(label)));
        for (const label of used) {
          if (!samples.some((sample) => label in sample.labels)) problems.push(`${describeSource(query.source)}: ${selector.metric} has no label ${label}`);
        }
        // Equality matchers must select something that exists (e.g. state="waiting", queue="expert.theme").
        // The ScaledObjects name every expert queue of models/demo; this mesh runs the tiny pack's three.
        const otherPackQueue = (m: { label: string; value: string }) => m.label === 'queue' && DEMO_ONLY_QUEUES.includes(m.value);
        for (const matcher of selector.matchers.filter((m) => m.op === '=' && !TARGET_LABELS.includes(m.label) && !otherPackQueue(m))) {
          if (!samples.some((sample) => sample.labels[matcher.label] === matcher.value)) {
            problems.push(`${describeSource(query.source)}: no ${selector.metric} series with ${matcher.label}="${matcher.value}"`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('answers liveness and readiness on every backend service', async () => {
    for (const [service, url] of Object.entries(mesh.mesh.metricsUrls)) {
      expect((await fetch(`${url}/health/live`)).status, service).toBe(200);
      if (service !== 'gateway') expect((await fetch(`${url}/health/ready`)).status, service).toBe(200);
    }
    expect((await fetch(`${mesh.url}/v2/health/ready`)).status).toBe(200);
  });
});
