import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { loadPackManifest } from '@rsmoe/contracts';

const REPO_ROOT = resolve(__dirname, '../../../..');

/** How to run the mesh locally: every service as its own process. */
export interface MeshOptions {
  packDir: string;
  redisUrl: string;
  /** Prefix of the mesh's Redis keys; tests use a unique one per run. */
  keyPrefix: string;
  /** BullMQ prefix; tests use a unique one per run. */
  queuePrefix: string;
  gatewayPort: number;
  routerPort: number;
  /**
   * Metrics + health ports: service i of serviceNames gets metricsBasePort + i (gateway, router,
   * aggregator, experts in pack order... as listed by serviceNames). 0 or absent: each picks a free one,
   * reported in its ready line and by metricsUrls.
   */
  metricsBasePort?: number;
  /**
   * Extra environment for every service (e.g. EXECUTION_PROVIDER). Readiness is read from each service's
   * info-level "ready" line, so LOG_LEVEL above info would hide it: filter in onLog instead.
   */
  env?: Record<string, string>;
  /** Extra environment per service name (`gateway`, `router`, `aggregator`, `expert.<id>`). */
  serviceEnv?: Record<string, Record<string, string>>;
  /** Receives every log line of every service, prefixed with its name. */
  onLog?: (service: string, line: string) => void;
  /** Longest wait for one service to report ready, in ms. */
  readyTimeoutMs?: number;
}

interface Service {
  name: string;
  entry: string;
  env: Record<string, string>;
  readyMessage: string;
}

/**
 * Starts and stops the mesh's services as separate Node processes (TypeScript through tsx): the router,
 * the aggregator, one expert per expert of the pack, and the gateway. Used by `rsmoe start`, the
 * end-to-end tests and the mesh benchmark.
 */
export class MeshLauncher {
  private readonly running = new Map<string, ChildProcess>();
  private readonly services = new Map<string, Service>();
  private readonly metricsPorts = new Map<string, number>();

  constructor(private readonly options: MeshOptions) {
    const manifest = loadPackManifest(options.packDir);
    const common = {
      REDIS_URL: options.redisUrl,
      KEY_PREFIX: options.keyPrefix,
      QUEUE_PREFIX: options.queuePrefix,
      PACK_DIR: options.packDir,
      ...options.env,
    };
    const add = (name: string, entry: string, env: Record<string, string>, readyMessage: string): void => {
      this.services.set(name, { name, entry, env: { ...common, ...env, ...options.serviceEnv?.[name] }, readyMessage });
    };
    add('router', 'apps/router/src/main.ts', { GRPC_PORT: String(options.routerPort) }, 'router ready');
    add('aggregator', 'apps/aggregator/src/main.ts', {}, 'aggregator ready');
    for (const expert of manifest.experts) add(`expert.${expert.id}`, 'apps/expert/src/main.ts', { EXPERT_ID: expert.id }, 'expert ready');
    add('gateway', 'apps/gateway/src/main.ts', { PORT: String(options.gatewayPort), ROUTER_URL: `127.0.0.1:${options.routerPort}` }, 'gateway ready');
    [...this.services.values()].forEach((service, index) => {
      const port = options.metricsBasePort ? options.metricsBasePort + index : 0;
      service.env = { METRICS_PORT: String(port), ...service.env };
    });
  }

  /** `http://127.0.0.1:<port>` of each started service's metrics + health server, by service name. */
  get metricsUrls(): Record<string, string> {
    return Object.fromEntries([...this.metricsPorts].map(([name, port]) => [name, `http://127.0.0.1:${port}`]));
  }

  /** Process ids of the running services, by service name. */
  get pids(): Record<string, number> {
    return Object.fromEntries([...this.running].flatMap(([name, child]) => (child.pid === undefined ? [] : [[name, child.pid]])));
  }

  get serviceNames(): string[] {
    return [...this.services.keys()];
  }

  get gatewayUrl(): string {
    return `http://127.0.0.1:${this.options.gatewayPort}`;
  }

  /** Starts every service (experts and workers first, the gateway last) and waits until each is ready. */
  async start(): Promise<void> {
    const backends = this.serviceNames.filter((name) => name !== 'gateway');
    try {
      await Promise.all(backends.map((name) => this.startService(name)));
      await this.startService('gateway');
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Starts one service and resolves when it logs its ready message. */
  startService(name: string): Promise<void> {
    const service = this.services.get(name);
    if (!service) throw new Error(`unknown service ${name}; services: ${this.serviceNames.join(', ')}`);
    const child = spawn(process.execPath, ['--import', 'tsx', service.entry], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...service.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.running.set(name, child);
    return new Promise<void>((resolveReady, reject) => {
      const timeoutMs = this.options.readyTimeoutMs ?? 60_000;
      const timer = setTimeout(() => reject(new Error(`${name} was not ready within ${timeoutMs} ms`)), timeoutMs);
      const lastLines: string[] = [];
      const onLine = (line: string): void => {
        this.options.onLog?.(name, line);
        lastLines.push(line);
        if (lastLines.length > 20) lastLines.shift();
        if (line.includes(`"msg":"${service.readyMessage}"`)) {
          const metricsPort = readyLineMetricsPort(line);
          if (metricsPort) this.metricsPorts.set(name, metricsPort);
          clearTimeout(timer);
          resolveReady();
        }
      };
      createInterface({ input: child.stdout! }).on('line', onLine);
      createInterface({ input: child.stderr! }).on('line', onLine);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (this.running.get(name) === child) this.running.delete(name);
        reject(new Error(`${name} exited (${signal ?? code}) before it was ready:\n${lastLines.join('\n')}`));
      });
    });
  }

  /** Stops one service with a signal (SIGTERM drains; SIGKILL simulates a crash) and waits for its exit. */
  async stopService(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.running.get(name);
    if (!child) return null;
    this.running.delete(name);
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
    child.kill(signal);
    return exited;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.running.keys()].map((name) => this.stopService(name)));
  }
}

/** The metrics port a service reports in its ready line (a JSON log line). */
function readyLineMetricsPort(line: string): number | undefined {
  try {
    const port = (JSON.parse(line) as { metricsPort?: unknown }).metricsPort;
    return typeof port === 'number' ? port : undefined;
  } catch {
    return undefined;
  }
}
