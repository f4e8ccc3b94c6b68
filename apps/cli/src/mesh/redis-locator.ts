import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
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
