import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { images } from './testing/gateway-test-kit';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * The real process as deployed: `node --import tsx apps/gateway/src/main.ts`. tsx emits no decorator
 * metadata (vitest's transform does), so this is the test that proves every injection is by token.
 */
describe('main.ts under tsx', () => {
  const keyPrefix = `gwmain-${randomBytes(6).toString('hex')}`;
  let child: ChildProcess;
  let base: string;
  let metricsPort: number;
  let logs = '';

  beforeAll(async () => {
    child = spawn(process.execPath, ['--import', 'tsx', 'apps/gateway/src/main.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', METRICS_PORT: '0', METRICS_HOST: '', ROUTER_URL: '127.0.0.1:1', KEY_PREFIX: keyPrefix, LOG_LEVEL: 'info', READY_CHECK_TIMEOUT_MS: '500', AUTH_MODE: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "gateway ready" line within 60 s:\n${logs}`)), 60_000);
      child.stdout!.on('data', (chunk: Buffer) => (logs += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => {
        logs += chunk.toString();
        const match = /"msg":"gateway ready".*?"url":"([^"]+)".*?"metricsPort":(\d+)/.exec(logs);
        if (match) {
          clearTimeout(timer);
          metricsPort = Number(match[2]);
          resolve(match[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`gateway exited with ${code}:\n${logs}`)));
    });
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    const redis = new Redis({ maxRetriesPerRequest: 1 });
    const keys = await redis.keys(`${keyPrefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('serves live (200), ready (503 without a router), maps the unreachable router, and drains on SIGTERM', async () => {
    const live = await fetch(`${base}/v2/health/live`);
    expect(live.status).toBe(200);

    const ready = await fetch(`${base}/v2/health/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { error: unknown }).error).toMatchObject({ code: 'not_ready', details: { checks: { redis: { ok: true }, router: { ok: false } } } });

    const body = new FormData();
    body.append('image', new Blob([new Uint8Array(await images.png())]), 'scene.png');
    const caption = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': 'tsx-boot' }, body });
    expect(caption.status).toBe(503);
    expect(caption.headers.get('x-correlation-id')).toBe('tsx-boot');
    const meshId = caption.headers.get('x-request-id');
    expect(meshId).toMatch(/^[0-9a-f]{32}$/);
    expect(((await caption.json()) as { error: unknown }).error).toMatchObject({ code: 'router_unavailable', requestId: meshId });

    expect((await fetch(`${base}/docs-json`)).status).toBe(200);

    // The metrics port listens on loopback only by default (METRICS_HOST): not on this machine's other addresses.
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status).toBe(200);
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address && address.family === 'IPv4' && !address.internal);
    if (external) await expect(fetch(`http://${external.address}:${metricsPort}/metrics`)).rejects.toThrow();

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(logs).toMatch(/"msg":"stopped"/);
  });
});
