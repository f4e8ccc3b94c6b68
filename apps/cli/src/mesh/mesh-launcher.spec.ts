import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisBlobStore } from '@rsmoe/blobstore';
import { REPO_ROOT } from '@rsmoe/config';
import { JOB_NAMES, expertQueueName, type ExpertJobResult } from '@rsmoe/contracts';
import { readFileSync } from 'node:fs';
import { DEFAULT_SERVICE_NODE_FLAGS, MeshLauncher, describeServiceEvent, serviceNodeFlags, type ServiceEvent } from './mesh-launcher';

const REDIS_URL = 'redis://127.0.0.1:6379';
const prefix = `launcher${randomBytes(4).toString('hex')}`;

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
}

describe('serviceNodeFlags', () => {
  it('gives the default when SERVICE_NODE_FLAGS is unset, the listed flags when set, none when empty', () => {
    expect(serviceNodeFlags({})).toEqual(DEFAULT_SERVICE_NODE_FLAGS.split(' '));
    expect(serviceNodeFlags({ SERVICE_NODE_FLAGS: ' --max-old-space-size=512  --single-threaded-gc ' })).toEqual(['--max-old-space-size=512', '--single-threaded-gc']);
    expect(serviceNodeFlags({ SERVICE_NODE_FLAGS: '' })).toEqual([]);
  });
});

/** The command line of a running process, as the kernel has it. */
function commandLineOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

describe('MeshLauncher restarts a crashed service (a real expert process, real Redis)', () => {
  const events: ServiceEvent[] = [];
  const mesh = new MeshLauncher({
    packDir: resolve(REPO_ROOT, 'models/fixtures/tiny-pack'),
    redisUrl: REDIS_URL,
    keyPrefix: prefix,
    queuePrefix: prefix,
    gatewayPort: 1,
    routerPort: 1,
    only: ['expert.theme'],
    env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1' },
    restart: { initialDelayMs: 200, maxDelayMs: 400, stableAfterMs: 60_000, loudAfterCrashes: 5 },
    onServiceEvent: (event) => events.push(event),
    readyTimeoutMs: 90_000,
  });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(expertQueueName('theme'), { connection: redis, prefix });

  afterAll(async () => {
    await mesh.stop();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('brings back an expert killed with SIGKILL, says so, and the new process serves', async () => {
    await mesh.start();
    expect(mesh.serviceNames).toEqual(['expert.theme']);
    const first = mesh.pids['expert.theme'];
    expect(commandLineOf(first), 'the service runs with the default Node flags').toEqual(expect.arrayContaining(serviceNodeFlags({})));
    process.kill(first, 'SIGKILL');
    const restarted = await until(() => events.find((event) => event.kind === 'restarted'), 90_000, 'the restart');
    expect(events[0]).toEqual({ kind: 'exited', service: 'expert.theme', code: null, signal: 'SIGKILL', restartInMs: 200, crashesInARow: 1, crashLoop: false });
    expect(describeServiceEvent(events[0])).toBe('rsmoe: expert.theme exited (signal SIGKILL); restarting in 0.2 s');
    expect(restarted).toMatchObject({ kind: 'restarted', service: 'expert.theme' });
    expect(mesh.pids['expert.theme']).toBeGreaterThan(0);
    expect(mesh.pids['expert.theme']).not.toBe(first);

    // It serves: a job on its queue is answered.
    const image = await new RedisBlobStore(redis, { keyPrefix: prefix, ttlSeconds: 60, maxBytes: 1 << 20 }).put(
      new Uint8Array(await sharp({ create: { width: 16, height: 16, channels: 3, background: '#446688' } }).png().toBuffer()),
      'image/png',
    );
    const now = Date.now();
    const job = await queue.add(
      JOB_NAMES.expertGenerate,
      {
        requestId: 'after-restart',
        task: 'caption',
        expertId: 'theme',
        prompt: 'describe the scene theme of the image .',
        images: [image],
        generation: { maxNewTokens: 3 },
        deadlineUnixMs: now + 60_000,
        enqueuedAtUnixMs: now,
        replyTo: `${prefix}:inbox:test`,
      },
      { jobId: 'after-restart.theme' },
    );
    const output = await until(
      async () => ((await Job.fromId(queue, job.id!))?.returnvalue as ExpertJobResult | null) ?? undefined,
      60_000,
      'the job',
    );
    expect(output).toMatchObject({ status: 'ok', generatedTokens: 3 });
  }, 240_000);

  it('does not restart a service stopped on purpose, even with SIGKILL', async () => {
    const before = events.length;
    await mesh.stopService('expert.theme', 'SIGKILL');
    await new Promise((resolveWait) => setTimeout(resolveWait, 800));
    expect(events.slice(before)).toEqual([]);
    expect(mesh.pids['expert.theme']).toBeUndefined();
  });
});

describe('describeServiceEvent', () => {
  it('names the service, how it exited and the delay; says CRASH LOOP loudly; says when restarts are off', () => {
    expect(describeServiceEvent({ kind: 'exited', service: 'router', code: 1, signal: null, restartInMs: 10_000, crashesInARow: 6, crashLoop: true })).toBe(
      'rsmoe: router exited (exit code 1); restarting in 10 s — CRASH LOOP: 6 crashes in a row; still retrying, Ctrl-C stops the mesh',
    );
    expect(describeServiceEvent({ kind: 'exited', service: 'gateway', code: 137, signal: null, crashesInARow: 1, crashLoop: false })).toBe(
      'rsmoe: gateway exited (exit code 137); not restarting (restarts are off)',
    );
    expect(describeServiceEvent({ kind: 'restart-failed', service: 'expert.object', error: 'expert.object exited (1) before it was ready:\nlast line' })).toBe(
      'rsmoe: expert.object did not come back: expert.object exited (1) before it was ready:',
    );
  });
});
