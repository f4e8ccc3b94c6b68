import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { loadPackManifest } from '@rsmoe/contracts';
import { RestartBackoff, type RestartPolicy } from './restart-backoff';

const REPO_ROOT = resolve(__dirname, '../../../..');

/**
 * Node flags of every service process unless SERVICE_NODE_FLAGS says otherwise (the image's entrypoint reads
 * the same variable, with the same default). onnxruntime's outputs (the whole KV cache, every decoding step)
 * are external memory that starts a V8 collection every few milliseconds. One GC thread: the parallel and
 * concurrent GC's helper threads, woken for each, cost more CPU than they save on a few shared cores. An old
 * generation allowed to grow to three times its live size: a service's heap (20–30 MB live) was marked every
 * ~200 ms, each mark-compact tens of ms of CPU. README "Performance" has the measurements of both.
 */
export const DEFAULT_SERVICE_NODE_FLAGS = '--single-threaded-gc --heap-growing-percent=200';

/** The flags SERVICE_NODE_FLAGS asks for (split on whitespace; empty: V8's defaults), else the default. */
export function serviceNodeFlags(env: NodeJS.ProcessEnv): string[] {
  return (env.SERVICE_NODE_FLAGS ?? DEFAULT_SERVICE_NODE_FLAGS).split(/\s+/).filter((flag) => flag.length > 0);
}

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
  /**
   * Restart a service that exits on its own (never one stopped through stopService/stop), with exponential
   * backoff (DEFAULT_RESTART_POLICY for `rsmoe start`). Absent or false: a crashed service stays down (the
   * end-to-end tests kill services on purpose).
   */
  restart?: RestartPolicy | false;
  /** Told of every unexpected exit and restart (`rsmoe start` prints describeServiceEvent of each). */
  onServiceEvent?: (event: ServiceEvent) => void;
  /**
   * The gateway's AUTH_MODE. Default `off`: a mesh on one machine runs without API keys (the gateway's own
   * default, `required`, is what a cluster runs). `rsmoe start --auth` asks for `required`.
   */
  authMode?: 'required' | 'off';
  /** Only these services (names as in serviceNames); default all. Tests start one expert alone. */
  only?: readonly string[];
}

/** What the launcher's supervision saw: a service exited on its own, was restarted, or failed to come back. */
export type ServiceEvent =
  | {
      kind: 'exited';
      service: string;
      code: number | null;
      signal: NodeJS.Signals | null;
      /** When the restart comes, in ms; absent when restarts are off. */
      restartInMs?: number;
      crashesInARow: number;
      crashLoop: boolean;
    }
  | { kind: 'restarted'; service: string; pid: number }
  | { kind: 'restart-failed'; service: string; error: string };

/** The line `rsmoe start` prints for an event. */
export function describeServiceEvent(event: ServiceEvent): string {
  switch (event.kind) {
    case 'exited': {
      const how = event.signal ? `signal ${event.signal}` : `exit code ${event.code}`;
      const next = event.restartInMs === undefined ? 'not restarting (restarts are off)' : `restarting in ${formatSeconds(event.restartInMs)}`;
      const loop = event.crashLoop ? ` — CRASH LOOP: ${event.crashesInARow} crashes in a row; still retrying, Ctrl-C stops the mesh` : '';
      return `rsmoe: ${event.service} exited (${how}); ${next}${loop}`;
    }
    case 'restarted':
      return `rsmoe: ${event.service} restarted and ready (pid ${event.pid})`;
    case 'restart-failed':
      return `rsmoe: ${event.service} did not come back: ${event.error.split('\n')[0]}`;
  }
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

interface Service {
  name: string;
  entry: string;
  env: Record<string, string>;
  readyMessage: string;
}

/**
 * Starts and stops the mesh's services as separate Node processes (TypeScript through tsx): the router,
 * the aggregator, one expert per expert of the pack, the gateway and the scene worker. Used by `rsmoe start`, the
 * end-to-end tests and the mesh benchmark.
 */
export class MeshLauncher {
  private readonly running = new Map<string, ChildProcess>();
  private readonly services = new Map<string, Service>();
  private readonly metricsPorts = new Map<string, number>();
  private readonly backoffs = new Map<string, RestartBackoff>();
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  private stopping = false;
  /** The pack's experts as service names (`expert.<id>`), whether started or not. */
  private readonly expertServices: string[];

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
    this.expertServices = manifest.experts.map((expert) => `expert.${expert.id}`);
    add(
      'gateway',
      'apps/gateway/src/main.ts',
      { PORT: String(options.gatewayPort), ROUTER_URL: `127.0.0.1:${options.routerPort}`, AUTH_MODE: options.authMode ?? 'off' },
      'gateway ready',
    );
    // Last, so the other services keep their metrics ports: drives whole scenes (POST /v1/scenes) through the router.
    add('scene-worker', 'apps/scene-worker/src/main.ts', { ROUTER_URL: `127.0.0.1:${options.routerPort}` }, 'scene worker ready');
    if (options.only) {
      for (const name of options.only) if (!this.services.has(name)) throw new Error(`unknown service ${name}; services: ${this.serviceNames.join(', ')}`);
      for (const name of this.serviceNames) if (!options.only.includes(name)) this.services.delete(name);
    }
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
    this.stopping = false;
    const backends = this.serviceNames.filter((name) => name !== 'gateway');
    try {
      await Promise.all(backends.map((name) => this.startService(name)));
      if (this.services.has('gateway')) {
        await this.startService('gateway');
        if (this.expertServices.every((name) => this.services.has(name))) await this.untilEveryExpertIsUp();
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /**
   * Waits until the gateway's readiness names no expert down. Every service has logged ready by now, but the
   * router learns of experts' workers by polling their queues (EXPERT_POLL_INTERVAL_MS, 1 s), so for up to one
   * poll it would route around an expert and the first requests would come back degraded or refused.
   */
  private async untilEveryExpertIsUp(): Promise<void> {
    const timeoutMs = this.options.readyTimeoutMs ?? 60_000;
    const giveUpAt = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < giveUpAt) {
      try {
        const response = await fetch(`${this.gatewayUrl}/v2/health/ready`, { signal: AbortSignal.timeout(2_000) });
        const body = (await response.json()) as { down?: string[] };
        if (response.ok && body.down?.length === 0) return;
        last = `${response.status} ${JSON.stringify(body).slice(0, 300)}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    }
    throw new Error(`the gateway did not report every expert up within ${timeoutMs} ms (last readiness answer: ${last})`);
  }

  /** Starts one service and resolves when it logs its ready message. */
  startService(name: string): Promise<void> {
    const service = this.services.get(name);
    if (!service) throw new Error(`unknown service ${name}; services: ${this.serviceNames.join(', ')}`);
    const env = { ...process.env, ...service.env };
    const child = spawn(process.execPath, [...serviceNodeFlags(env), '--import', 'tsx', service.entry], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.running.set(name, child);
    const backoff = this.backoffs.get(name) ?? new RestartBackoff(this.options.restart || undefined);
    this.backoffs.set(name, backoff);
    backoff.started();
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
        reject(new Error(`${name} exited (${signal ?? code}) before it was ready:\n${lastLines.join('\n')}`));
        // stopService removes a child before signalling it: one still here exited on its own.
        if (this.running.get(name) !== child) return;
        this.running.delete(name);
        this.exitedOnItsOwn(name, code, signal);
      });
    });
  }

  private exitedOnItsOwn(name: string, code: number | null, signal: NodeJS.Signals | null): void {
    const decision = this.backoffs.get(name)!.crashed();
    const restart = this.options.restart && !this.stopping;
    this.options.onServiceEvent?.({
      kind: 'exited',
      service: name,
      code,
      signal,
      ...(restart ? { restartInMs: decision.delayMs } : {}),
      crashesInARow: decision.crashesInARow,
      crashLoop: decision.crashLoop,
    });
    if (!restart) return;
    const timer = setTimeout(() => {
      this.restartTimers.delete(name);
      if (this.stopping) return;
      this.startService(name).then(
        () => this.options.onServiceEvent?.({ kind: 'restarted', service: name, pid: this.running.get(name)?.pid ?? -1 }),
        // The exit that rejected this start schedules the next try itself.
        (error: unknown) => this.options.onServiceEvent?.({ kind: 'restart-failed', service: name, error: error instanceof Error ? error.message : String(error) }),
      );
    }, decision.delayMs);
    this.restartTimers.set(name, timer);
  }

  /** Stops one service with a signal (SIGTERM drains; SIGKILL simulates a crash) and waits for its exit. */
  async stopService(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    clearTimeout(this.restartTimers.get(name));
    this.restartTimers.delete(name);
    const child = this.running.get(name);
    if (!child) return null;
    this.running.delete(name);
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
    child.kill(signal);
    return exited;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restartTimers.values()) clearTimeout(timer);
    this.restartTimers.clear();
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
