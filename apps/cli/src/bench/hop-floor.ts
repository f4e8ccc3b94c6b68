import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { serviceNodeFlags } from '../mesh/mesh-launcher';
import { freePort } from '../mesh/redis-locator';

const ENTRY = resolve(__dirname, 'hop-floor.process.ts');
const READY_TIMEOUT_MS = 30_000;

/**
 * The floor of the design's own shape on this machine (the benchmark's `raw-mesh` path): an edge process
 * (HTTP in, the body to Redis, gRPC out), a router process (one plain BullMQ job per expert, their replies on
 * a pub/sub inbox, the result to Redis, the gRPC answer) and one no-op worker process per routed expert —
 * the hops of a caption request through the mesh with nothing done between them. Started with the services'
 * Node flags, so that the mesh and its floor run alike.
 */
export class HopFloor {
  private readonly prefix = `benchfloor${randomBytes(4).toString('hex')}`;
  private readonly children = new Map<string, ChildProcess>();
  private agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private edgePort = 0;

  constructor(private readonly options: { redisUrl: string; expertIds: string[] }) {}

  /** The keys the run wrote live under this prefix (for the benchmark's clean-up). */
  get keyPrefix(): string {
    return this.prefix;
  }

  get pids(): Record<string, number> {
    return Object.fromEntries([...this.children].map(([name, child]) => [name, child.pid!]));
  }

  async start(): Promise<void> {
    this.edgePort = await freePort();
    const common = {
      REDIS_URL: this.options.redisUrl,
      HOP_FLOOR_PREFIX: this.prefix,
      HOP_FLOOR_ROUTER_PORT: String(await freePort()),
      HOP_FLOOR_EDGE_PORT: String(this.edgePort),
      HOP_FLOOR_EXPERTS: this.options.expertIds.join(','),
    };
    await Promise.all([
      this.startProcess('router', { ...common, HOP_FLOOR_ROLE: 'router' }),
      ...this.options.expertIds.map((id) => this.startProcess(`expert.${id}`, { ...common, HOP_FLOOR_ROLE: 'expert', HOP_FLOOR_EXPERT: id })),
    ]);
    await this.startProcess('edge', { ...common, HOP_FLOOR_ROLE: 'edge' });
  }

  /** One request through the floor: POSTs `body` to the edge and resolves on its 200. */
  send(body: Buffer): Promise<void> {
    return new Promise((resolveSent, reject) => {
      const call = request(
        { host: '127.0.0.1', port: this.edgePort, path: '/', method: 'POST', agent: this.agent, headers: { 'content-length': body.length } },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => (response.statusCode === 200 ? resolveSent() : reject(new Error(`raw-mesh edge answered ${response.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 200)}`))));
        },
      );
      call.on('error', reject);
      call.end(body);
    });
  }

  /** Fresh client connections (as the mesh's levels use), so an idle keep-alive socket is not reset under a request. */
  resetConnections(): void {
    this.agent.destroy();
    this.agent = new Agent({ keepAlive: true, maxSockets: 64 });
  }

  async stop(): Promise<void> {
    this.agent.destroy();
    await Promise.all(
      [...this.children.values()].map(
        (child) =>
          new Promise<void>((resolveExit) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolveExit();
            child.once('exit', () => resolveExit());
            child.kill('SIGTERM');
          }),
      ),
    );
    this.children.clear();
  }

  private startProcess(name: string, env: Record<string, string>): Promise<void> {
    const merged = { ...process.env, ...env };
    const child = spawn(process.execPath, [...serviceNodeFlags(merged), '--import', 'tsx', ENTRY], { env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.set(name, child);
    return new Promise((resolveReady, reject) => {
      const output: string[] = [];
      const timer = setTimeout(() => reject(new Error(`raw-mesh ${name} was not ready within ${READY_TIMEOUT_MS} ms: ${output.join('\n')}`)), READY_TIMEOUT_MS);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') {
          clearTimeout(timer);
          resolveReady();
        }
      });
      createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`raw-mesh ${name} exited (${signal ?? code}) before it was ready: ${output.join('\n')}`));
      });
    });
  }
}
