import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The mesh as containers: the image of deploy/docker/Dockerfile built with podman (from a Debian base made by
 * deploy/docker/build-base.sh unless a base image is given), then Redis and every service of the pack as separate
 * containers of that one image on the host network, the gateway and the scene worker sharing a podman volume as
 * their scene store. Used by `npm run deploy:local` and test/deploy/container.e2e.spec.ts.
 */

export const REPO_ROOT = resolve(__dirname, '../..');
export const DOCKERFILE = 'deploy/docker/Dockerfile';
export const BUILD_BASE_SCRIPT = join(REPO_ROOT, 'deploy/docker/build-base.sh');
/** Tags the built images get (podman's layer cache makes a rebuild of unchanged sources take seconds). */
export const MESH_IMAGE = 'localhost/rsmoe-mesh:local';
/** What build-base.sh tags by default. */
export const DEFAULT_BASE_IMAGE = 'localhost/rsmoe-base:bookworm';
export const REDIS_IMAGE = 'localhost/rsmoe-redis:local';
/** Label on every container a mesh starts, with the mesh's name: `--down` removes by it. */
export const MESH_LABEL = 'io.rsmoe.mesh';
/**
 * podman's default OCI runtime, crun, refuses this kind of machine's hybrid cgroups; runc works.
 * Overridden by RSMOE_OCI_RUNTIME.
 */
export const OCI_RUNTIME = process.env.RSMOE_OCI_RUNTIME ?? 'runc';
/** The pack baked into the image (PACK_DIR of the runtime stage). */
export const IMAGE_PACK_DIR = '/app/models/demo';
/** The image's scene store folder (SCENE_STORE_DIR of the runtime stage, owned by user 1000): the shared volume goes there. */
export const IMAGE_SCENE_STORE_DIR = '/var/lib/rsmoe/scenes';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (never throws for a non-zero exit; ENOENT becomes code 127). */
export function run(command: string, args: readonly string[], options: { timeoutMs?: number; onOutput?: (chunk: string) => void } = {}): Promise<CommandResult> {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      options.onOutput?.(chunk.toString());
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      options.onOutput?.(chunk.toString());
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolveRun({ code: error.code === 'ENOENT' ? 127 : 1, stdout, stderr: stderr + String(error) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

async function runOrThrow(command: string, args: readonly string[], options: { timeoutMs?: number; onOutput?: (chunk: string) => void } = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    const tail = (result.stderr || result.stdout).trim().split('\n').slice(-25).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.code}):\n${tail}`);
  }
  return result.stdout;
}

/** `podman --runtime <runc> …` */
export function podman(args: readonly string[], options: { timeoutMs?: number; onOutput?: (chunk: string) => void } = {}): Promise<string> {
  return runOrThrow('podman', ['--runtime', OCI_RUNTIME, ...args], options);
}

/** Whether this machine can build and run the containers, and if not, exactly why. */
export type ContainerSupport = { ok: true; podmanVersion: string } | { ok: false; reason: string };

export async function probeContainerSupport(): Promise<ContainerSupport> {
  const version = await run('podman', ['--version']);
  if (version.code !== 0) return { ok: false, reason: 'podman is not installed (Debian: apt-get install podman runc mmdebstrap; .ci/run does this)' };
  const runtime = await run(OCI_RUNTIME, ['--version']);
  if (runtime.code !== 0) return { ok: false, reason: `the OCI runtime ${OCI_RUNTIME} is not installed (Debian: apt-get install ${OCI_RUNTIME})` };
  const info = await run('podman', ['--runtime', OCI_RUNTIME, 'info', '--format', '{{.Store.GraphDriverName}}'], { timeoutMs: 60_000 });
  if (info.code !== 0) return { ok: false, reason: `podman cannot start here: ${(info.stderr || info.stdout).trim().split('\n').slice(-3).join(' ')}` };
  const mmdebstrap = await run('mmdebstrap', ['--version']);
  const base = await run('podman', ['image', 'exists', DEFAULT_BASE_IMAGE]);
  if (mmdebstrap.code !== 0 && base.code !== 0) {
    return { ok: false, reason: `mmdebstrap is not installed and there is no ${DEFAULT_BASE_IMAGE} to build from (Debian: apt-get install mmdebstrap)` };
  }
  return { ok: true, podmanVersion: version.stdout.trim() };
}

/**
 * `--ulimit` arguments every container (and the build's RUN steps) gets: podman's defaults (nofile and nproc of
 * 1048576) are above this kind of machine's hard limits, which runc may not raise. Open files: the hard limit,
 * at most 65536. Processes: 8192 (runc was refused above that here), at most the hard limit.
 */
export async function ulimitArgs(): Promise<string[]> {
  const hard = async (flag: string) => {
    const value = (await run('sh', ['-c', `ulimit -H${flag}`])).stdout.trim();
    return value === 'unlimited' || value === '' ? Number.POSITIVE_INFINITY : Number(value);
  };
  const nofile = Math.min(await hard('n'), 65_536);
  const nproc = Math.min(await hard('u'), 8_192);
  return ['--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`];
}

export interface BuildReport {
  baseImage: string;
  meshImage: string;
  redisImage: string;
  /** Seconds for build-base.sh (0 when a base image was given). */
  baseSeconds: number;
  /** Seconds for `podman build` of the runtime and redis targets. */
  buildSeconds: number;
  /** The runtime image's size in bytes, as podman reports it. */
  meshImageBytes: number;
}

export interface BuildOptions {
  /** A base image to build FROM; default: the Debian base of build-base.sh (made or taken from its cache). */
  baseImage?: string;
  meshImage?: string;
  redisImage?: string;
  /** Receives the build's output as it comes. */
  onOutput?: (chunk: string) => void;
}

/** Builds (or, with podman's layer cache, re-validates) the mesh and Redis images. */
export async function buildImages(options: BuildOptions = {}): Promise<BuildReport> {
  const meshImage = options.meshImage ?? MESH_IMAGE;
  const redisImage = options.redisImage ?? REDIS_IMAGE;
  let baseImage = options.baseImage;
  let baseSeconds = 0;
  if (!baseImage) {
    const started = Date.now();
    baseImage = (await runOrThrow('bash', [BUILD_BASE_SCRIPT], { onOutput: options.onOutput, timeoutMs: 15 * 60_000 })).trim().split('\n').pop()!;
    baseSeconds = (Date.now() - started) / 1000;
  }
  const caFile = await registryCaFile();
  const common = [
    'build',
    '--network', 'host',
    ...(await ulimitArgs()),
    ...(caFile ? ['--secret', `id=npm_ca,src=${caFile}`] : []),
    '--build-arg', `BASE_IMAGE=${baseImage}`,
    '--file', DOCKERFILE,
    '--layers',
  ];
  const started = Date.now();
  await podman([...common, '--target', 'runtime', '--tag', meshImage, '.'], { onOutput: options.onOutput, timeoutMs: 30 * 60_000 });
  await podman([...common, '--target', 'redis', '--tag', redisImage, '.'], { onOutput: options.onOutput, timeoutMs: 15 * 60_000 });
  const buildSeconds = (Date.now() - started) / 1000;
  const meshImageBytes = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', meshImage])).trim());
  return { baseImage, meshImage, redisImage, baseSeconds, buildSeconds, meshImageBytes };
}

/**
 * The CA bundle npm trusts on this machine ($NODE_EXTRA_CA_CERTS, else npm's `cafile`), given to the build as the
 * secret npm_ca: a registry behind a TLS-inspecting proxy is reachable from the build's npm then too.
 */
async function registryCaFile(): Promise<string | undefined> {
  const candidates = [process.env.NODE_EXTRA_CA_CERTS, (await run('npm', ['config', 'get', 'cafile'])).stdout.trim()];
  return candidates.find((file): file is string => !!file && file !== 'null' && file !== 'undefined' && existsSync(file));
}

/** Ports of a mesh on the host network. Metrics: router, aggregator, experts (pack order), gateway, scene worker from metricsBase on. */
export interface MeshPorts {
  redis: number;
  gateway: number;
  router: number;
  metricsBase: number;
}

export interface ServiceSpec {
  /** router, aggregator, expert.<id>, gateway, scene-worker (as `rsmoe start` names them). */
  name: string;
  /** The entrypoint's argument: router | aggregator | expert | gateway | scene-worker. */
  command: string;
  metricsPort: number;
  env: Record<string, string>;
  /** Mounts the mesh's scene store volume at IMAGE_SCENE_STORE_DIR (gateway and scene worker). */
  sceneStore?: boolean;
}

export interface PodmanMeshOptions {
  /** Names the containers (`<name>-<service>`) and labels them; default `rsmoe-local`. */
  name?: string;
  meshImage?: string;
  redisImage?: string;
  ports: MeshPorts;
  /** The gateway's listen address (default 127.0.0.1; 0.0.0.0 to reach it from other machines). */
  gatewayHost?: string;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

/** The expert ids of the pack baked into the image, read from the image itself. */
export async function imagePackExperts(meshImage = MESH_IMAGE): Promise<{ name: string; version: string; experts: string[] }> {
  const text = await podman(['run', '--rm', '--network', 'none', ...(await ulimitArgs()), '--entrypoint', 'cat', meshImage, `${IMAGE_PACK_DIR}/pack.json`]);
  const manifest = JSON.parse(text) as { name: string; version: string; experts: { id: string }[] };
  return { name: manifest.name, version: manifest.version, experts: manifest.experts.map((expert) => expert.id) };
}

/**
 * The containers of one mesh: Redis, then router, aggregator, one per expert, the gateway and the scene worker, each
 * from the one image; the gateway and the scene worker mount one podman volume (`<name>-scenes`) as SCENE_STORE_DIR.
 */
export class PodmanMesh {
  readonly name: string;
  readonly services: ServiceSpec[];
  private readonly meshImage: string;
  private readonly redisImage: string;

  constructor(
    private readonly options: PodmanMeshOptions,
    expertIds: readonly string[],
  ) {
    this.name = options.name ?? 'rsmoe-local';
    this.meshImage = options.meshImage ?? MESH_IMAGE;
    this.redisImage = options.redisImage ?? REDIS_IMAGE;
    const { ports } = options;
    const common = { REDIS_URL: `redis://127.0.0.1:${ports.redis}`, LOG_LEVEL: 'info', ...options.env };
    const specs: Omit<ServiceSpec, 'metricsPort'>[] = [
      { name: 'router', command: 'router', env: { ...common, GRPC_HOST: '127.0.0.1', GRPC_PORT: String(ports.router) } },
      { name: 'aggregator', command: 'aggregator', env: common },
      ...expertIds.map((id) => ({ name: `expert.${id}`, command: 'expert', env: { ...common, EXPERT_ID: id, EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1' } })),
      {
        name: 'gateway',
        command: 'gateway',
        env: {
          ...common,
          HOST: options.gatewayHost ?? '127.0.0.1',
          PORT: String(ports.gateway),
          ROUTER_URL: `127.0.0.1:${ports.router}`,
          AUTH_MODE: 'off',
          SCENE_STORE_DIR: IMAGE_SCENE_STORE_DIR,
        },
        sceneStore: true,
      },
      { name: 'scene-worker', command: 'scene-worker', env: { ...common, ROUTER_URL: `127.0.0.1:${ports.router}`, SCENE_STORE_DIR: IMAGE_SCENE_STORE_DIR }, sceneStore: true },
    ];
    // Host networking: every service needs its own metrics port.
    this.services = specs.map((spec, index) => ({ ...spec, metricsPort: ports.metricsBase + index, env: { ...spec.env, METRICS_PORT: String(ports.metricsBase + index) } }));
  }

  get gatewayUrl(): string {
    return `http://127.0.0.1:${this.options.ports.gateway}`;
  }

  containerName(service: string): string {
    return `${this.name}-${service.replace(/\./g, '-')}`;
  }

  /** The podman volume the gateway and the scene worker share as their scene store. */
  get sceneStoreVolume(): string {
    return `${this.name}-scenes`;
  }

  /** `127.0.0.1:<port>` of each service's metrics, by service name. */
  metricsTargets(): Record<string, string> {
    return Object.fromEntries(this.services.map((service) => [service.name, `127.0.0.1:${service.metricsPort}`]));
  }

  /**
   * Removes what an earlier run of this mesh left (containers and scene store), creates the scene store volume,
   * starts Redis and waits for it, starts every service and waits until each one's readiness passes (the gateway's:
   * every expert has a live worker). Returns the milliseconds from the first service container's start to the mesh
   * being ready.
   */
  async start(): Promise<{ readyMs: number }> {
    await removeMesh(this.name);
    const ulimits = await ulimitArgs();
    const label = ['--label', `${MESH_LABEL}=${this.name}`];
    // A fresh volume takes the owner of the image's folder it is mounted on (user 1000) when first mounted.
    await podman(['volume', 'create', ...label, this.sceneStoreVolume]);
    const base = ['run', '--detach', '--network', 'host', ...ulimits, ...label, '--read-only', '--tmpfs', '/tmp'];
    await podman([...base, '--name', this.containerName('redis'), this.redisImage, '--bind', '127.0.0.1', '--port', String(this.options.ports.redis), '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction']);
    await this.waitFor('redis', async () => (await run('podman', ['--runtime', OCI_RUNTIME, 'exec', this.containerName('redis'), 'redis-cli', '-p', String(this.options.ports.redis), 'ping'])).stdout.trim() === 'PONG');
    const started = Date.now();
    for (const service of this.services) {
      const env = Object.entries(service.env).flatMap(([key, value]) => ['--env', `${key}=${value}`]);
      const volumes = service.sceneStore ? ['--volume', `${this.sceneStoreVolume}:${IMAGE_SCENE_STORE_DIR}`] : [];
      await podman([...base, '--name', this.containerName(service.name), ...env, ...volumes, this.meshImage, service.command]);
    }
    await Promise.all(this.services.map((service) => this.waitFor(service.name, () => this.serviceReady(service))));
    return { readyMs: Date.now() - started };
  }

  private async serviceReady(service: ServiceSpec): Promise<boolean> {
    const url = service.name === 'gateway' ? `${this.gatewayUrl}/v2/health/ready` : `http://127.0.0.1:${service.metricsPort}/health/ready`;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (response.status !== 200) return false;
      if (service.name !== 'gateway') return true;
      const body = (await response.json()) as { degraded?: boolean };
      return body.degraded !== true;
    } catch {
      return false;
    }
  }

  private async waitFor(service: string, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 120_000);
    for (;;) {
      if (await ready()) return;
      const state = (await run('podman', ['--runtime', OCI_RUNTIME, 'inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', this.containerName(service)])).stdout.trim();
      if (!state.startsWith('running') || Date.now() > deadline) {
        const logs = await run('podman', ['logs', '--tail', '30', this.containerName(service)]);
        const why = state.startsWith('running') ? `not ready within ${this.options.readyTimeoutMs ?? 120_000} ms` : `container ${state || 'missing'}`;
        throw new Error(`${this.containerName(service)}: ${why}; its last lines:\n${logs.stdout}${logs.stderr}`);
      }
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 250));
    }
  }

  /** Kills one service's container (SIGKILL: a crash, no drain). */
  async kill(service: string): Promise<void> {
    await podman(['kill', '--signal', 'KILL', this.containerName(service)]);
  }

  /** The last lines of a service's logs. */
  async logs(service: string, lines = 40): Promise<string> {
    const result = await run('podman', ['logs', '--tail', String(lines), this.containerName(service)]);
    return result.stdout + result.stderr;
  }

  async stop(): Promise<void> {
    await removeMesh(this.name);
  }
}

/** Removes every container labelled with this mesh's name (running or not), then its volumes (the scene store); returns their names. */
export async function removeMesh(name: string): Promise<string[]> {
  const lines = (text: string) => text.split('\n').map((line) => line.trim()).filter(Boolean);
  const names = lines(await podman(['ps', '--all', '--filter', `label=${MESH_LABEL}=${name}`, '--format', '{{.Names}}']));
  if (names.length > 0) await podman(['rm', '--force', '--time', '5', ...names]);
  const volumes = lines(await podman(['volume', 'ls', '--filter', `label=${MESH_LABEL}=${name}`, '--format', '{{.Name}}']));
  if (volumes.length > 0) await podman(['volume', 'rm', '--force', ...volumes]);
  return [...names, ...volumes];
}

/** The repository's pack manifest (the one the image bakes): name, version, experts and those with a caption prompt. */
export function repositoryPack(packDir = join(REPO_ROOT, 'models/demo')): { name: string; version: string; experts: string[]; captionExperts: string[] } {
  const manifest = JSON.parse(readFileSync(join(packDir, 'pack.json'), 'utf8')) as { name: string; version: string; experts: { id: string; prompts: Record<string, unknown> }[] };
  return {
    name: manifest.name,
    version: manifest.version,
    experts: manifest.experts.map((expert) => expert.id),
    captionExperts: manifest.experts.filter((expert) => 'caption' in expert.prompts).map((expert) => expert.id),
  };
}
