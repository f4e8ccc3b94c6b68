import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from './logger';
import { ServiceMetrics } from './metrics';
import { startOpsServer, type OpsServer, type ReadinessCheck } from './ops-server';

const logger = createLogger('test', { level: 'error' });
let server: OpsServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(readiness?: ReadinessCheck[], checkTimeoutMs = 200): Promise<string> {
  server = await startOpsServer({ port: 0, host: '127.0.0.1', metrics: new ServiceMetrics(), readiness, checkTimeoutMs, logger, readinessElsewhere: 'GET /v2/health/ready on port 8080' });
  return `http://127.0.0.1:${server.port}`;
}

describe('ops server', () => {
  it('serves Prometheus text on /metrics and liveness on /health/live', async () => {
    const url = await start([]);
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    expect(await metrics.text()).toContain('process_resident_memory_bytes');
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
  });

  it('is ready only when every check passes, and names the failing and the hanging ones', async () => {
    let modelLoaded = false;
    const url = await start([
      { name: 'model', check: async () => void (modelLoaded || (() => { throw new Error('still loading'); })()) },
      { name: 'redis', check: async () => undefined },
    ]);
    const notReady = await fetch(`${url}/health/ready`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: 'not_ready', failures: [{ check: 'model', detail: 'still loading' }] });
    modelLoaded = true;
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
  });

  it('bounds a hanging check by its timeout', async () => {
    const url = await start([{ name: 'redis', check: () => new Promise(() => undefined) }], 50);
    const response = await fetch(`${url}/health/ready`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ failures: [{ check: 'redis', detail: 'no answer within 50 ms' }] });
  });

  it('says where readiness is when the service serves it on its API port', async () => {
    const url = await start(undefined);
    const response = await fetch(`${url}/health/ready`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain('/v2/health/ready');
  });

  it('answers unknown paths with 404 and other methods with 405', async () => {
    const url = await start([]);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});
