import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { redactRedisUrl } from '@rsmoe/config';

/** True when a Redis at `url` answers PING within `connectTimeoutMs`. */
export async function answersPing(url: string, connectTimeoutMs = 1_000): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: connectTimeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** Lowest port of the kernel's range for outgoing connections' local ports (Linux's default 32768). */
export function ephemeralPortsStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) && start > 1024 ? start : 32_768;
  } catch {
    return 32_768;
  }
}

const LOWEST_FREE_PORT = 10_000;
/** Ports this process has handed out, not handed out twice. */
const handedOut = new Set<number>();

/**
 * A port for a process that binds it later (a service the launcher starts, a test's server). Drawn below the
 * kernel's ephemeral range: a port from listen(0) lies inside it, and any outgoing connection opened before
 * the service binds (a Redis client's local port) could take it — a gateway then failed to start with
 * EADDRINUSE in CI. Checked by listening on it on every interface; never the same port twice per process.
 */
export async function freePort(): Promise<number> {
  const above = LOWEST_FREE_PORT;
  const below = Math.max(above + 1_000, ephemeralPortsStart());
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = above + Math.floor(Math.random() * (below - above));
    if (handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port found between ${above} and ${below} in 100 tries`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, () => server.close(() => resolve(true)));
  });
}

/** A Redis the mesh can use, and the server process when we had to start one. */
export interface LocatedRedis {
  url: string;
  started?: ChildProcess;
  how: string;
}

/**
 * REDIS_URL when given (it must answer); else 127.0.0.1:6379 when it answers; else a `redis-server` we
 * start on a free port when one is installed; else a clear error saying how to get one.
 */
export async function locateRedis(configuredUrl: string | undefined): Promise<LocatedRedis> {
  if (configuredUrl) {
    if (await answersPing(configuredUrl)) return { url: configuredUrl, how: 'REDIS_URL' };
    throw new Error(`REDIS_URL=${redactRedisUrl(configuredUrl)} does not answer PING`);
  }
  const local = 'redis://127.0.0.1:6379';
  if (await answersPing(local)) return { url: local, how: 'the Redis on 127.0.0.1:6379' };
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error(
      'no Redis: set REDIS_URL, or run one on 127.0.0.1:6379, or install redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)',
    );
  }
  const port = await freePort();
  const started = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 50; attempt++) {
    if (await answersPing(url)) return { url, started, how: `a redis-server started on port ${port}` };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  started.kill();
  throw new Error(`started redis-server on port ${port} but it does not answer`);
}
