import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { ALERTS_FILE, REPO_ROOT } from './promql';

/**
 * A real Prometheus (Debian's package) for the deployment tests: the repository's scrape configuration with its
 * targets pointed at a running mesh, queries through the HTTP API.
 */

export const PROMETHEUS_CONFIG_FILE = join(REPO_ROOT, 'deploy/prometheus/prometheus.yml');
export const ALERTS_TEST_FILE = join(REPO_ROOT, 'deploy/prometheus/alerts.test.yml');

/** The binaries or a clear error (never a skip): Debian's `prometheus` package has both. */
export function prometheusBinaries(): { prometheus: string; promtool: string } {
  const found = (name: string) => {
    const result = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    return result.status === 0 ? result.stdout.trim() : undefined;
  };
  const prometheus = found('prometheus');
  const promtool = found('promtool');
  if (!prometheus || !promtool) {
    throw new Error(
      `${!prometheus ? 'prometheus' : 'promtool'} is not on PATH: the deployment tests run the alert rules through promtool and ` +
        'query a real Prometheus. Install it (Debian: apt-get install prometheus; .ci/run does this) and run the tests again.',
    );
  }
  return { prometheus, promtool };
}

interface ScrapeConfigFile {
  global?: Record<string, unknown>;
  rule_files?: string[];
  scrape_configs: { job_name: string; static_configs: { targets: string[]; labels?: Record<string, string> }[] }[];
}

/**
 * deploy/prometheus/prometheus.yml for a mesh that is not on compose's network: every target `<service>:9464`
 * becomes the address `addressOf(service)` gives (compose names: gateway, router, aggregator, expert-<id>), labels,
 * intervals and jobs unchanged; the rule file is the repository's. Throws for a target with no address, except
 * those `absent` allows (an expert of models/demo that the test's pack does not have): their groups are left out.
 */
export function scrapeConfigFor(
  addressOf: (composeService: string) => string | undefined,
  text = readFileSync(PROMETHEUS_CONFIG_FILE, 'utf8'),
  absent: (composeService: string) => boolean = () => false,
): string {
  const config = parseYaml(text) as ScrapeConfigFile;
  for (const job of config.scrape_configs) {
    job.static_configs = job.static_configs.filter((group) => !group.targets.every((target) => absent(target.split(':')[0]!)));
    for (const group of job.static_configs) {
      group.targets = group.targets.map((target) => {
        const service = target.split(':')[0]!;
        const address = addressOf(service);
        if (!address) throw new Error(`prometheus.yml target ${target}: no running service ${service}`);
        return address;
      });
    }
  }
  config.rule_files = [ALERTS_FILE];
  return stringify(config);
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A Prometheus process on 127.0.0.1 with its own temporary storage. */
export class PrometheusServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
    readonly log: string[],
  ) {}

  static async start(configYaml: string, port: number): Promise<PrometheusServer> {
    const { prometheus } = prometheusBinaries();
    const dir = mkdtempSync(join(tmpdir(), 'rsmoe-prometheus-'));
    writeFileSync(join(dir, 'prometheus.yml'), configYaml);
    const log: string[] = [];
    const child = spawn(
      prometheus,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (chunk: Buffer) => log.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => log.push(chunk.toString()));
    const server = new PrometheusServer(child, dir, `http://127.0.0.1:${port}`, log);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}):\n${log.join('')}`);
      try {
        if ((await fetch(`${server.url}/-/ready`)).status === 200) return server;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`prometheus was not ready within 30 s:\n${log.join('')}`);
      }
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 200));
    }
  }

  private async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const response = await fetch(`${this.url}${path}?${new URLSearchParams(params)}`);
    const body = (await response.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
    return body.data;
  }

  /** An instant query (at `time`, in seconds, or now): the samples of its vector result. */
  async query(promql: string, time?: number): Promise<PromSample[]> {
    const data = await this.api<{ resultType: string; result: PromSample[] | [number, string] }>('/api/v1/query', { query: promql, ...(time ? { time: String(time) } : {}) });
    if (data.resultType === 'scalar') return [{ metric: {}, value: data.result as [number, string] }];
    return data.result as PromSample[];
  }

  async targets(): Promise<{ labels: Record<string, string>; health: string; lastError: string; scrapeUrl: string }[]> {
    return (await this.api<{ activeTargets: { labels: Record<string, string>; health: string; lastError: string; scrapeUrl: string }[] }>('/api/v1/targets')).activeTargets;
  }

  async rules(): Promise<{ name: string; health: string; lastError?: string; lastEvaluation: string; type: string }[]> {
    const data = await this.api<{ groups: { rules: { name: string; health: string; lastError?: string; lastEvaluation: string; type: string }[] }[] }>('/api/v1/rules');
    return data.groups.flatMap((group) => group.rules);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolveExit) => this.child.once('exit', resolveExit));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A dashboard query as Grafana would send it: `$__rate_interval` (and friends) as `rateInterval`, every other
 * variable by `variables` (a multi-value "All" is `.*`).
 */
export function grafanaQueryToPromql(expr: string, variables: Record<string, string>, rateInterval: string): string {
  return expr
    .replace(/\$\{__(?:rate_interval|interval|range)(?::[^}]*)?\}|\$__(?:rate_interval|interval|range)\b/g, rateInterval)
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced?: string, bare?: string) => {
      const name = braced ?? bare!;
      const value = variables[name];
      if (value === undefined) throw new Error(`no value for Grafana variable $${name} in: ${expr}`);
      return value;
    });
}
