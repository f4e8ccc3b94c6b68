import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { MeshLauncher } from '../../apps/cli/src/mesh/mesh-launcher';
import { freePort } from '../../apps/cli/src/mesh/redis-locator';
import { PACK_DIR, REDIS_URL, postImage, testImage } from '../e2e/mesh-fixture';
import {
  ALERTS_FILE,
  EXTERNAL_METRICS,
  alertQueries,
  dashboardQueries,
  describeSource,
  extractMetricSelectors,
  kedaQueries,
  labelValuesToPromql,
  type MonitoringQuery,
} from '../support/promql';
import { ALERTS_TEST_FILE, PrometheusServer, grafanaQueryToPromql, prometheusBinaries, scrapeConfigFor, type PromSample } from '../support/prometheus-server';
import { deleteKeysWithPrefix } from '../support/redis-cleanup';
import { demoOnlyExpertIds, packExpertIds } from './deploy-support';

/**
 * The monitoring artefacts run in a real Prometheus (Debian's package, 2.42 here), not only parsed:
 * - promtool checks the alert rules and runs their unit tests (deploy/prometheus/alerts.test.yml: every alert
 *   firing and not firing), and a rule changed on purpose makes those unit tests fail;
 * - a Prometheus with the repository's scrape configuration (targets pointed at the running services) scrapes a
 *   mesh of real processes (test/e2e/mesh-fixture.ts: the services as plain Node processes, not containers), and
 *   after traffic every dashboard and KEDA query over rsmoe_ series returns numbers through the HTTP API; the
 *   alert rules evaluate without error. Panels fed by cAdvisor, DCGM or kube-state-metrics cannot have data here
 *   and are listed as such.
 */

const { promtool } = prometheusBinaries();

function runPromtool(args: string[]): { status: number; output: string } {
  const result = spawnSync(promtool, args, { encoding: 'utf8' });
  return { status: result.status ?? 1, output: `${result.stdout}${result.stderr}` };
}

interface RuleTests {
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

describe('the alert rules in promtool', () => {
  it('pass promtool check rules', () => {
    const { status, output } = runPromtool(['check', 'rules', ALERTS_FILE]);
    expect(status, output).toBe(0);
    expect(output).toContain(`SUCCESS: ${alertQueries().length} rules found`);
  });

  it('pass their unit tests, which see every alert fire and stay quiet', () => {
    const { status, output } = runPromtool(['test', 'rules', ALERTS_TEST_FILE]);
    expect(status, output).toBe(0);
    const tests = parseYaml(readFileSync(ALERTS_TEST_FILE, 'utf8')) as RuleTests;
    const cases = tests.tests.flatMap((test) => test.alert_rule_test ?? []);
    for (const alert of alertQueries().map((query) => (query.source.kind === 'alert' ? query.source.alert : ''))) {
      expect(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert} fires in a test`).toBe(true);
      expect(cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0), `${alert} stays quiet in a test`).toBe(true);
    }
  });

  it('fail their unit tests when a threshold changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rsmoe-promtool-'));
    try {
      copyFileSync(ALERTS_TEST_FILE, join(dir, 'alerts.test.yml'));
      const rules = readFileSync(ALERTS_FILE, 'utf8');
      for (const [from, to] of [
        ['[5m]))) > 10', '[5m]))) > 30'],
        // Masks: one expert's p99 is 119.4 s (quiet), another's 298.2 s (firing).
        ['[15m]))) > 120', '[15m]))) > 100'],
        ['[15m]))) > 120', '[15m]))) > 300'],
        ['> 0.05', '> 0.5'],
        ['(rsmoe_api_key_daily_quota) > 0.9', '(rsmoe_api_key_daily_quota) > 0.99'],
      ] as const) {
        expect(rules, from).toContain(from);
        writeFileSync(join(dir, 'alerts.yml'), rules.replace(from, to));
        const { status, output } = runPromtool(['test', 'rules', join(dir, 'alerts.test.yml')]);
        expect(status, `${from} → ${to} still passes:\n${output}`).not.toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The queries that can only have data in a cluster (cAdvisor, DCGM, kube-state-metrics), and those of the mesh. */
function splitByOrigin(queries: MonitoringQuery[]): { mesh: MonitoringQuery[]; external: MonitoringQuery[] } {
  const external = queries.filter((query) => extractMetricSelectors(query.promql).some((selector) => selector.metric in EXTERNAL_METRICS));
  return { mesh: queries.filter((query) => !external.includes(query)), external };
}

/** Grafana's view of the mesh here: namespace `local` (prometheus.yml's label), every expert and task. */
const VARIABLES = { namespace: 'local', expert: '.*', task: '.*', DS_PROMETHEUS: 'prometheus' };
const RATE_INTERVAL = '2m';

function evaluable(query: MonitoringQuery): string {
  // A variable's `label_values(selector, label)` is asked as the PromQL it stands for.
  const expr = query.source.kind === 'dashboard-variable' ? (labelValuesToPromql(query.expr) ?? query.expr) : query.expr;
  return grafanaQueryToPromql(expr, VARIABLES, RATE_INTERVAL);
}

const finite = (samples: PromSample[]) => samples.filter((sample) => Number.isFinite(Number(sample.value[1])));

/**
 * Metrics ports of this suite's services (router, aggregator, experts, gateway, scene worker): fixed, so that a
 * service restarted in the middle is scraped at the same address again. Other suites take free ephemeral ports; the
 * container suite uses 26xxx.
 */
const METRICS_BASE_PORT = 27_164;

describe('a real Prometheus scraping the mesh', () => {
  let mesh: MeshLauncher;
  let url: string;
  let prometheus: PrometheusServer;
  const prefix = `prom${randomBytes(5).toString('hex')}`;
  const scraped = ['router', 'aggregator', 'expert.theme', 'expert.object', 'expert.relation', 'gateway', 'scene-worker'];

  beforeAll(async () => {
    mesh = new MeshLauncher({
      packDir: PACK_DIR,
      redisUrl: REDIS_URL,
      keyPrefix: prefix,
      queuePrefix: prefix,
      gatewayPort: await freePort(),
      routerPort: await freePort(),
      metricsBasePort: METRICS_BASE_PORT,
      env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1' },
      readyTimeoutMs: 90_000,
    });
    await mesh.start();
    url = mesh.gatewayUrl;
    const targets = mesh.metricsUrls;
    // prometheus.yml scrapes every expert of models/demo; this mesh runs the tiny pack's three.
    const notInTestPack = (composeService: string) => composeService.startsWith('expert-') && demoOnlyExpertIds().includes(composeService.slice('expert-'.length));
    const config = scrapeConfigFor((composeService) => targets[composeService.replace(/^expert-/, 'expert.')]?.replace('http://', ''), undefined, notInTestPack);
    prometheus = await PrometheusServer.start(config, await freePort());
  }, 180_000);

  afterAll(async () => {
    await prometheus?.stop();
    await mesh?.stop();
    // Every key this run wrote (results, blobs, queues).
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  });

  it('scrapes every service with the repository configuration', async () => {
    // Every service the launcher (`rsmoe start`) runs is in the scrape configuration, and nothing else.
    expect(Object.keys(mesh.metricsUrls).sort()).toEqual([...scraped].sort());
    await expect
      .poll(async () => (await prometheus.targets()).map((target) => `${target.labels.pod} ${target.health} ${target.lastError}`).sort(), { timeout: 30_000, interval: 500 })
      .toEqual(['aggregator up ', 'gateway up ', 'router up ', 'rsmoe-expert-object-0 up ', 'rsmoe-expert-relation-0 up ', 'rsmoe-expert-theme-0 up ', 'scene-worker up ']);
    // The scene worker's own series arrive under its target's labels (process metrics: it exports no rsmoe_ series).
    await expect
      .poll(async () => (await prometheus.query('process_cpu_seconds_total{job="rsmoe", namespace="local", pod="scene-worker"}')).length, { timeout: 30_000, interval: 500 })
      .toBe(1);
  });

  it('has no latency to show before any traffic', async () => {
    const p50 = dashboardQueries().find((query) => query.source.kind === 'dashboard' && query.expr.startsWith('histogram_quantile(0.5, sum by (expert, le) (rate(rsmoe_expert_request_duration_seconds_bucket'))!;
    expect(finite(await prometheus.query(evaluable(p50)))).toEqual([]);
  });

  it('answers every dashboard and KEDA query over rsmoe_ series with numbers after traffic', async () => {
    // Traffic of every kind the panels show. First the faults: a 5xx (the router stopped, then back), then a
    // degraded answer (an expert killed, then back): the restarted router counts it.
    await mesh.stopService('router', 'SIGTERM');
    expect((await postImage(url, '/v1/captions', await testImage(12))).status).toBe(503);
    await mesh.startService('router');
    const down = async () => {
      const response = await fetch(`${url}/v2/health/ready`);
      return response.status === 200 ? ((await response.json()) as { down: string[] }).down : undefined;
    };
    await expect.poll(down, { timeout: 30_000 }).toEqual([]);
    // The restarted router's counters are scraped once before they count the degraded answer.
    await new Promise((resolveSleep) => setTimeout(resolveSleep, 6_000));
    await mesh.stopService('expert.relation', 'SIGKILL');
    await expect.poll(down, { timeout: 15_000 }).toEqual(['relation']);
    const degraded = await postImage(url, '/v1/captions', await testImage(11), { timeoutMs: '4000' });
    expect(degraded.body.degraded).toBe(true);
    await mesh.startService('expert.relation');
    await expect.poll(down, { timeout: 15_000 }).toEqual([]);
    // Then captions and questions. A labelled series appears with its first observation, and rate() sees only what
    // grows after Prometheus first scraped it: one of each first, a scrape, then the traffic the panels show.
    expect((await postImage(url, '/v1/captions', await testImage(1))).status).toBe(200);
    expect((await postImage(url, '/v1/vqa', await testImage(2), { question: 'how many buildings are there ?' })).status).toBe(200);
    const firstSeen = 'rsmoe_grpc_request_duration_seconds_count and on () count(rsmoe_expert_request_duration_seconds_count{task="vqa"})';
    await expect.poll(async () => (await prometheus.query(firstSeen)).length, { timeout: 20_000 }).toBeGreaterThan(0);
    await new Promise((resolveSleep) => setTimeout(resolveSleep, 6_000));
    for (let seed = 3; seed <= 8; seed++) {
      expect((await postImage(url, '/v1/captions', await testImage(seed))).status).toBe(200);
      const question = seed % 2 === 0 ? 'how many buildings are there ?' : 'is it a rural or an urban area ?';
      expect((await postImage(url, '/v1/vqa', await testImage(seed), { question })).status).toBe(200);
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 1_500));
    }

    // The ScaledObjects name every expert of models/demo; this mesh runs the tiny pack, whose router exports the
    // queue gauge of its own experts only. The others' triggers are the same query on another queue name.
    const testPackQueues = new Set(packExpertIds('models/fixtures/tiny-pack').map((id) => `expert.${id}`));
    const queuesOf = (expr: string) => [...expr.matchAll(/queue="([^"]+)"/g)].map((match) => match[1]);
    const [kedaOfTestPack, kedaOfOtherExperts] = partition(kedaQueries(), (query) => queuesOf(query.expr).every((queue) => testPackQueues.has(queue)));
    expect(kedaOfOtherExperts.flatMap((query) => queuesOf(query.expr)).every((queue) => packExpertIds('models/demo').map((id) => `expert.${id}`).includes(queue))).toBe(true);
    const { mesh: meshQueries, external } = splitByOrigin([...dashboardQueries(), ...kedaOfTestPack]);
    expect(meshQueries.length).toBeGreaterThanOrEqual(20);
    // Two scrapes (5 s apart) after the traffic and the rules' evaluation interval (15 s) have passed.
    let empty: string[] = [];
    const values: string[] = [];
    await expect
      .poll(
        async () => {
          empty = [];
          values.length = 0;
          for (const query of meshQueries) {
            const samples = finite(await prometheus.query(evaluable(query)));
            if (samples.length === 0) empty.push(`${describeSource(query.source)}: ${evaluable(query)}`);
            else values.push(`${describeSource(query.source)}: ${samples.length} series, e.g. ${JSON.stringify(samples[0]!.metric)} = ${samples[0]!.value[1]}`);
          }
          return empty;
        },
        { timeout: 60_000, interval: 2_000 },
      )
      .toEqual([]);
    // The degraded answer shows in the ratio panel (not only zeros).
    const ratio = meshQueries.find((query) => query.source.kind === 'dashboard' && query.source.panel === 'Degraded result ratio')!;
    const caption = finite(await prometheus.query(evaluable(ratio))).find((sample) => sample.metric.task === 'caption' && sample.metric.outcome === 'degraded');
    expect(Number(caption?.value[1])).toBeGreaterThan(0);
    console.log(`prometheus e2e: ${meshQueries.length} queries over rsmoe_ series answered:\n  ${values.join('\n  ')}`);
    console.log(`prometheus e2e: fed by cAdvisor, DCGM or kube-state-metrics (no data outside a cluster):\n  ${external.map((query) => describeSource(query.source)).join('\n  ')}`);
    expect(external.map((query) => describeSource(query.source)).sort()).toEqual([
      'deploy/grafana/dashboards/rsmoe-mesh.json panel "CPU (cores)" A',
      'deploy/grafana/dashboards/rsmoe-mesh.json panel "GPU memory used" A',
      'deploy/grafana/dashboards/rsmoe-mesh.json panel "GPU utilisation" A',
      'deploy/grafana/dashboards/rsmoe-mesh.json panel "Memory working set" A',
    ]);
  }, 240_000);

  it('loads the alert rules and evaluates each without error on the scraped series', async () => {
    await expect
      .poll(async () => (await prometheus.rules()).map((rule) => `${rule.name} ${rule.health}${rule.lastError ? ` ${rule.lastError}` : ''}`).sort(), { timeout: 40_000, interval: 1_000 })
      .toEqual(alertQueries().map((query) => `${query.source.kind === 'alert' ? query.source.alert : ''} ok`).sort());
  }, 60_000);
});

function partition<T>(items: readonly T[], keep: (item: T) => boolean): [T[], T[]] {
  return [items.filter(keep), items.filter((item) => !keep(item))];
}
