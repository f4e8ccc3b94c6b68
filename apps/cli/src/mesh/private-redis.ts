import { spawn, type ChildProcess } from 'node:child_process';
import { answersPing, freePort } from './redis-locator';

/**
 * A redis-server of our own on a free loopback port, with no persistence (`--save "" --appendonly no`):
 * restarting it wipes it, and never touches the Redis other tests share on 6379. The one helper for every
 * suite that needs its own server (faults, fuzz, Redis outage and password tests) and for `bench mesh`,
 * whose Redis CPU and command counts must be the mesh's alone.
 */
export class PrivateRedis {
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    /** `requirepass` of the server, if any (percent-encoded into `url`). */
    readonly password: string | undefined,
  ) {}

  static async start(options: { password?: string } = {}): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), options.password);
    await redis.start();
    return redis;
  }

  /** The server's process id while it runs. */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  get url(): string {
    const auth = this.password === undefined ? '' : `:${encodeURIComponent(this.password)}@`;
    return `redis://${auth}127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const auth = this.password === undefined ? [] : ['--requirepass', this.password];
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', ...auth];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.process = child;
    for (let attempt = 0; attempt < 100; attempt++) {
      if (await answersPing(this.url, 500)) return;
      if (child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGKILL');
    throw new Error(`redis-server on port ${this.port} did not answer`);
  }

  /** Stops the server (SIGKILL: a crash; SIGTERM: a clean shutdown) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** Kills the server, waits `downMs`, and starts a fresh, empty one on the same port. */
  async restart(downMs: number): Promise<void> {
    await this.stop('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.start();
  }
}
