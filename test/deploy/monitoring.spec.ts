import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { EXPERT_JOB_LATENCY_BUCKETS_SECONDS, LATENCY_BUCKETS_SECONDS, METRICS } from '@rsmoe/observability';
import {
  ALERTS_FILE,
  DASHBOARD_FILE,
  EXTERNAL_METRICS,
  PromqlParseError,
  alertQueries,
  catalogueMetricFor,
  collectMonitoringQueries,
  dashboardQueries,
  describeSource,
  extractMetricSelectors,
  kedaQueries,
  knownLabelsOf,
} from '../support/promql';
import { validateObject, type K8sObject } from './deploy-support';

/** The dashboard, the alert rules and the KEDA triggers, held against the metric catalogue (no cluster needed). */

describe('extractMetricSelectors', () => {
  it('finds selectors, matchers and the labels aggregations and matching group on', () => {
    const selectors = extractMetricSelectors(
      'histogram_quantile(0.99, sum by (le, expert) (rate(rsmoe_expert_request_duration_seconds_bucket{namespace=~"$namespace", expert=~"${expert}"}[$__rate_interval])))',
    );
    expect(selectors).toEqual([
      {
        metric: 'rsmoe_expert_request_duration_seconds_bucket',
        labels: ['namespace', 'expert'],
        matchers: [
          { label: 'namespace', op: '=~', value: 'var' },
          { label: 'expert', op: '=~', value: 'var' },
        ],
        byLabels: ['le', 'expert'],
      },
    ]);
  });

  it('handles without, on/ignoring, group_left, __name__ and quoted label names', () => {
    const selectors = extractMetricSelectors(
      'sum without (pod) ({__name__="a_total", "odd.label"="x"}) / ignoring (outcome) group_left (owner) sum by (task, owner) (b_total) and on (queue) c',
    );
    expect(selectors.map(({ metric, labels, byLabels }) => ({ metric, labels, byLabels }))).toEqual([
      // `/` binds tighter than `and`: a and b are also matched on (queue).
      { metric: 'a_total', labels: ['odd.label'], byLabels: ['pod', 'outcome', 'queue'] },
      { metric: 'b_total', labels: [], byLabels: ['task', 'owner', 'outcome', 'queue'] },
      { metric: 'c', labels: [], byLabels: ['queue'] },
    ]);
  });

  it('throws on a syntax error instead of guessing', () => {
    expect(() => extractMetricSelectors('sum(rate(x[5m]) bad')).toThrow(PromqlParseError);
    expect(() => extractMetricSelectors('rate(x{a="b"[5m])')).toThrow(PromqlParseError);
  });
});

describe('schema validation', () => {
  it('rejects unknown kinds and invalid objects', () => {
    expect(() => validateObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'rsmoe-x' } })).toThrow(/no schema/);
    const broken = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'rsmoe-x' }, spec: { replicas: 'two', selector: {}, template: { spec: { containers: [] } } } };
    expect(() => validateObject(broken as K8sObject)).toThrow(/replicas/);
  });
});

describe('monitoring queries', () => {
  const queries = collectMonitoringQueries();

  it('come from the dashboard, the alert rules and the KEDA ScaledObjects', () => {
    const kinds = new Set(queries.map((query) => query.source.kind));
    expect([...kinds].sort()).toEqual(['alert', 'dashboard', 'dashboard-variable', 'keda']);
    expect(kedaQueries().length).toBeGreaterThanOrEqual(10); // five experts in each of two overlays
  });

  it('parse, and use only catalogue or listed external metrics with labels those metrics carry', () => {
    const problems: string[] = [];
    for (const query of queries) {
      for (const selector of extractMetricSelectors(query.promql)) {
        const known = knownLabelsOf(selector.metric);
        if (!known) {
          problems.push(`${describeSource(query.source)}: unknown metric ${selector.metric}`);
          continue;
        }
        for (const label of [...selector.labels, ...selector.byLabels]) {
          if (!known.includes(label)) problems.push(`${describeSource(query.source)}: ${selector.metric} has no label ${label}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('take quantiles only over histogram buckets grouped by le', () => {
    for (const query of queries.filter((q) => q.promql.includes('histogram_quantile'))) {
      for (const selector of extractMetricSelectors(query.promql)) {
        expect(catalogueMetricFor(selector.metric)?.suffix, describeSource(query.source)).toBe('_bucket');
        expect(selector.byLabels, describeSource(query.source)).toContain('le');
      }
    }
  });

  it('keep the external metric list to what the artefacts use', () => {
    const used = new Set(queries.flatMap((query) => extractMetricSelectors(query.promql).map((selector) => selector.metric)));
    for (const name of Object.keys(EXTERNAL_METRICS)) expect(used, name).toContain(name);
  });

  it('share the latency buckets of 1 ms to 60 s; expert jobs (masks take minutes) go on to 600 s', () => {
    expect(LATENCY_BUCKETS_SECONDS[0]).toBe(0.001);
    expect(LATENCY_BUCKETS_SECONDS[LATENCY_BUCKETS_SECONDS.length - 1]).toBe(60);
    expect(METRICS.expertRequestDuration.buckets).toEqual(EXPERT_JOB_LATENCY_BUCKETS_SECONDS);
    expect(EXPERT_JOB_LATENCY_BUCKETS_SECONDS.slice(-3)).toEqual([120, 300, 600]);
  });

  it('compare a quantile only with thresholds under the histogram\'s top finite bucket (histogram_quantile never answers above it)', () => {
    const thresholds = queries.filter((query) => query.source.kind === 'alert' && query.promql.includes('histogram_quantile'));
    expect(thresholds.length).toBeGreaterThanOrEqual(2);
    for (const query of thresholds) {
      const threshold = Number(/\)\s*>\s*([\d.]+)\s*$/.exec(query.promql)?.[1]);
      expect(threshold, describeSource(query.source)).toBeGreaterThan(0);
      for (const selector of extractMetricSelectors(query.promql)) {
        const buckets = catalogueMetricFor(selector.metric)!.definition.buckets ?? LATENCY_BUCKETS_SECONDS;
        expect(buckets[buckets.length - 1], `${describeSource(query.source)}: top bucket of ${selector.metric}`).toBeGreaterThan(threshold);
      }
    }
  });
});

describe('the Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as {
    uid: string;
    templating: { list: { name: string; type: string; query?: unknown }[] };
    panels: { type: string; title: string; datasource?: { uid: string }; targets?: { datasource?: { uid: string }; expr: string }[] }[];
  };
  const exprs = dashboardQueries().filter((query) => query.source.kind === 'dashboard');
  const metricsUsed = new Set(exprs.flatMap((query) => extractMetricSelectors(query.promql).map((selector) => selector.metric)));

  it('has the data source, namespace and expert variables', () => {
    const variables = Object.fromEntries(dashboard.templating.list.map((variable) => [variable.name, variable]));
    expect(variables.DS_PROMETHEUS).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.namespace?.type).toBe('query');
    expect(variables.expert?.type).toBe('query');
    for (const query of exprs) {
      if (extractMetricSelectors(query.promql).some((selector) => catalogueMetricFor(selector.metric)?.definition.labelNames.includes('expert'))) {
        expect(query.expr, describeSource(query.source)).toContain('expert=~"$expert"');
      }
      expect(query.expr, describeSource(query.source)).toContain('namespace=~"$namespace"');
    }
  });

  it('queries ${DS_PROMETHEUS} in every panel and target', () => {
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe('${DS_PROMETHEUS}');
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe('${DS_PROMETHEUS}');
    }
  });

  it('shows per-expert p50/p95/p99 latency from the request histogram', () => {
    for (const quantile of ['0.5', '0.95', '0.99']) {
      expect(exprs.some((query) => query.expr.startsWith(`histogram_quantile(${quantile}, sum by (expert, le) (rate(${METRICS.expertRequestDuration.name}_bucket`))).toBe(true);
    }
  });

  it('covers throughput, queues, time to first token, batch size, errors, degradation and CPU/GPU of expert pods', () => {
    for (const metric of [
      `${METRICS.expertJobs.name}`,
      `${METRICS.httpRequestDuration.name}_count`,
      METRICS.queueJobs.name,
      `${METRICS.expertQueueWait.name}_bucket`,
      `${METRICS.expertTimeToFirstToken.name}_bucket`,
      `${METRICS.expertBatchSize.name}_sum`,
      `${METRICS.expertBatchSize.name}_bucket`,
      METRICS.aggregatorResults.name,
      'container_cpu_usage_seconds_total',
      'container_memory_working_set_bytes',
      'DCGM_FI_DEV_GPU_UTIL',
      'DCGM_FI_DEV_FB_USED',
    ]) {
      expect(metricsUsed, metric).toContain(metric);
    }
  });
});

describe('the alert rules', () => {
  const rules = parseYaml(readFileSync(ALERTS_FILE, 'utf8')) as {
    groups: { name: string; rules: { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[];
  };
  const alerts = Object.fromEntries(rules.groups.flatMap((group) => group.rules.map((rule) => [rule.alert, rule])));

  it('contain the alerts of the issues, each with a duration, a severity and a summary', () => {
    expect(Object.keys(alerts).sort()).toEqual([
      'RsmoeApiKeyQuotaNearlyUsed',
      'RsmoeDegradedRateHigh',
      'RsmoeExpertLatencyP99High',
      'RsmoeExpertMaskLatencyP99High',
      'RsmoeExpertNoReadyReplica',
      'RsmoeQueueBacklogGrowing',
    ]);
    for (const rule of Object.values(alerts)) {
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
    }
  });

  it('watch the right signals', () => {
    const metricsOf = (name: string) => extractMetricSelectors(alerts[name]!.expr);
    const p99 = metricsOf('RsmoeExpertLatencyP99High');
    expect(alerts.RsmoeExpertLatencyP99High!.expr).toContain('histogram_quantile(0.99');
    expect(p99.map((s) => s.metric)).toEqual([`${METRICS.expertRequestDuration.name}_bucket`]);
    expect(p99[0]!.byLabels).toContain('expert');
    // Masks are long text: their latency has its own alert and threshold, the other tasks' leaves them out.
    expect(p99[0]!.matchers).toContainEqual({ label: 'task', op: '!~', value: 'segmentation|change' });
    const masks = metricsOf('RsmoeExpertMaskLatencyP99High');
    expect(alerts.RsmoeExpertMaskLatencyP99High!.expr).toContain('histogram_quantile(0.99');
    expect(alerts.RsmoeExpertMaskLatencyP99High!.expr).toMatch(/> 120\s*$/);
    expect(masks.map((s) => s.metric)).toEqual([`${METRICS.expertRequestDuration.name}_bucket`]);
    expect(masks[0]!.matchers).toContainEqual({ label: 'task', op: '=~', value: 'segmentation|change' });
    const backlog = metricsOf('RsmoeQueueBacklogGrowing');
    expect(backlog.every((s) => s.metric === METRICS.queueJobs.name && s.matchers.some((m) => m.label === 'state' && m.value === 'waiting'))).toBe(true);
    expect(metricsOf('RsmoeExpertNoReadyReplica').map((s) => s.metric)).toEqual(['kube_deployment_status_replicas_available']);
    const degraded = metricsOf('RsmoeDegradedRateHigh');
    // Degraded results over all results, whoever fused them: the router, or the aggregator at the fuse point.
    expect(degraded.map((s) => s.metric)).toEqual([
      METRICS.aggregatorResults.name,
      METRICS.routerFusedResults.name,
      METRICS.aggregatorResults.name,
      METRICS.routerFusedResults.name,
    ]);
    expect(degraded[0]!.matchers).toContainEqual({ label: 'outcome', op: '=', value: 'degraded' });
    expect(degraded[1]!.matchers).toContainEqual({ label: 'outcome', op: '=', value: 'degraded' });
    // Images today over the daily quota, per key name, across gateway replicas (each reports the Redis count).
    const quota = metricsOf('RsmoeApiKeyQuotaNearlyUsed');
    expect(quota.map((s) => s.metric)).toEqual([METRICS.apiKeyImagesToday.name, METRICS.apiKeyDailyQuota.name]);
    expect(quota.every((s) => s.byLabels.includes('key'))).toBe(true);
    expect(alerts.RsmoeApiKeyQuotaNearlyUsed!.expr).toMatch(/> 0\.9\s*$/);
    expect(alertQueries()).toHaveLength(6);
  });
});
