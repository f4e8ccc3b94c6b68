import 'reflect-metadata';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { createRedisKeys } from '@rsmoe/contracts';
import { createLogger } from '@rsmoe/observability';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RouterCallError } from './errors/router-status.mapping';
import { createGatewayApp, type GatewayApp } from './gateway.app';
import type { GatewayConfig } from './gateway.config';
import { cannedResult, CANNED_EXPERTS, FakeRouter, images, testConfig } from './testing/gateway-test-kit';

const silent = createLogger('gateway', { level: 'error', write: () => {} });

/** The in-process gateway on an ephemeral port, real Redis (random key prefix), a fake router. */
describe('gateway HTTP API', () => {
  let config: GatewayConfig;
  let redis: Redis;
  let router: FakeRouter;
  let gateway: GatewayApp;
  let base: string;
  let png: Buffer;

  beforeAll(async () => {
    config = testConfig();
    redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
    router = new FakeRouter();
    gateway = await createGatewayApp(config, { router, redis, logger: silent });
    base = await gateway.listen();
    png = await images.png();
  });

  afterAll(async () => {
    await gateway?.close();
    const keys = await redis.keys(`${config.KEY_PREFIX}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  beforeEach(() => {
    router.behaviour = undefined;
    router.health = { serving: true, status: 'SERVING' };
  });

  const blobKeys = async (): Promise<string[]> => (await redis.keys(`${config.KEY_PREFIX}:blob:*`)).sort();

  function form(fields: Record<string, string | Buffer>): FormData {
    const data = new FormData();
    for (const [name, value] of Object.entries(fields)) {
      if (typeof value === 'string') data.append(name, value);
      else data.append(name, new Blob([new Uint8Array(value)]), `${name}.bin`);
    }
    return data;
  }

  const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  /** Asserts the error shape and that the request reached neither the router nor the blob store. */
  async function expectRefused(send: () => Promise<Response>, status: number, code: string): Promise<Record<string, string>> {
    const callsBefore = router.calls.length;
    const blobsBefore = await blobKeys();
    const response = await send();
    const body = (await response.json()) as { error: Record<string, string> };
    expect({ status: response.status, code: body.error?.code }).toEqual({ status, code });
    expect(typeof body.error.message).toBe('string');
    expect(body.error.requestId).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
    expect(response.headers.get('x-request-id')).toBe(body.error.requestId);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(router.calls.length).toBe(callsBefore);
    expect(await blobKeys()).toEqual(blobsBefore);
    return body.error;
  }

  it('captions a multipart PNG: the fake router gets the sha256 ref, the deadline and the echoed request id', async () => {
    const before = Date.now();
    const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': 'client-id_42' }, body: form({ image: png }) });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('client-id_42');
    expect(await response.json()).toEqual(cannedResult('client-id_42'));

    const { method, call } = router.calls.at(-1)!;
    expect(method).toBe('caption');
    expect(call.requestId).toBe('client-id_42');
    expect(call.images).toEqual([{ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), byteLength: png.byteLength, mediaType: 'image/png' }]);
    expect(call.deadlineUnixMs).toBeGreaterThanOrEqual(before + config.REQUEST_TIMEOUT_MS);
    expect(call.deadlineUnixMs).toBeLessThanOrEqual(Date.now() + config.REQUEST_TIMEOUT_MS);
    // The bytes are stored once, under their digest, with the blob TTL.
    const key = createRedisKeys(config.KEY_PREFIX).blobKey(call.images[0].sha256);
    expect((await redis.hgetBuffer(key, 'bytes'))?.equals(png)).toBe(true);
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(config.BLOB_TTL_S);
  });

  it('captions a JSON base64 image and a data URL, generating a request id when none is sent', async () => {
    for (const image of [png.toString('base64'), `data:image/png;base64,${png.toString('base64')}`]) {
      const response = await postJson('/v1/captions', { image, params: { maxNewTokens: 12 }, timeoutMs: 2000 });
      expect(response.status).toBe(200);
      const requestId = response.headers.get('x-request-id')!;
      expect(requestId).toMatch(/^[0-9a-f]{32}$/);
      expect(((await response.json()) as { requestId: string }).requestId).toBe(requestId);
      const { call } = router.calls.at(-1)!;
      expect(call.params).toEqual({ maxNewTokens: 12 });
      expect(call.deadlineUnixMs - Date.now()).toBeLessThanOrEqual(2000);
    }
  });

  it('answers a question (multipart and JSON), honouring X-Request-Timeout-Ms', async () => {
    const multipart = await fetch(`${base}/v1/vqa`, {
      method: 'POST',
      headers: { 'X-Request-Timeout-Ms': '1500' },
      body: form({ image: await images.jpeg(), question: 'Is there a road?', params: '{"numBeams":2}' }),
    });
    expect(multipart.status).toBe(200);
    expect(await multipart.json()).toMatchObject({ task: 'vqa', answer: 'yes', question: 'Is there a road?' });
    const { method, call } = router.calls.at(-1)!;
    expect(method).toBe('answer');
    expect(call).toMatchObject({ question: 'Is there a road?', params: { numBeams: 2 }, images: [{ mediaType: 'image/jpeg' }] });
    expect(call.deadlineUnixMs - Date.now()).toBeLessThanOrEqual(1500);

    const viaJson = await postJson('/v1/vqa', { image: png.toString('base64'), question: 'How many trees?' });
    expect(viaJson.status).toBe(200);
    expect(router.calls.at(-1)!.call).toMatchObject({ question: 'How many trees?' });
  });

  describe('refuses bad input before storing or sending anything', () => {
    it.each<[string, () => Promise<RequestInit & { path?: string }>, number, string]>([
      ['no image (multipart)', async () => ({ body: form({ params: '{}' }) }), 400, 'missing_image'],
      ['no image (JSON)', async () => ({ body: JSON.stringify({}), headers: { 'content-type': 'application/json' } }), 400, 'missing_image'],
      ['no body at all', async () => ({}), 400, 'missing_image'],
      ['bad base64', async () => ({ body: JSON.stringify({ image: '%%%not-base64%%%' }), headers: { 'content-type': 'application/json' } }), 400, 'invalid_base64'],
      ['malformed JSON', async () => ({ body: '{"image": ', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json'],
      ['a file under another field name', async () => ({ body: form({ file: png }) }), 400, 'invalid_multipart'],
      ['an unknown field', async () => ({ body: form({ image: png, colour: 'red' }) }), 400, 'unknown_field'],
      ['a GIF', async () => ({ body: form({ image: await images.gif() }) }), 415, 'unsupported_media_type'],
      ['a file over the byte limit (multer)', async () => ({ body: form({ image: await images.noisyPng(160, 160) }) }), 413, 'payload_too_large'],
      ['base64 over the byte limit', async () => ({ body: JSON.stringify({ image: Buffer.alloc(80 * 1024, 1).toString('base64') }), headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large'],
      ['a JSON body over the body limit', async () => ({ body: JSON.stringify({ image: 'A'.repeat(400 * 1024) }), headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large'],
      ['too many pixels', async () => ({ body: form({ image: await images.png(120, 120) }) }), 422, 'too_many_pixels'],
      ['a corrupt header', async () => ({ body: form({ image: images.corruptPng() }) }), 422, 'invalid_image'],
      ['bad params', async () => ({ body: form({ image: png, params: '{"temperature":-1}' }) }), 400, 'invalid_params'],
      ['params that are not JSON', async () => ({ body: form({ image: png, params: 'maxNewTokens=3' }) }), 400, 'invalid_params'],
      ['timeoutMs above the maximum', async () => ({ body: form({ image: png, timeoutMs: '10001' }) }), 400, 'invalid_timeout'],
      ['X-Request-Timeout-Ms above the maximum', async () => ({ body: form({ image: png }), headers: { 'X-Request-Timeout-Ms': '60000' } }), 400, 'invalid_timeout'],
      ['an invalid X-Request-Id', async () => ({ body: form({ image: png }), headers: { 'X-Request-Id': 'has spaces and:colons' } }), 400, 'invalid_request_id'],
      ['a question without image on /v1/vqa', async () => ({ path: '/v1/vqa', body: form({ question: 'Is it urban?' }) }), 400, 'missing_image'],
      ['no question on /v1/vqa', async () => ({ path: '/v1/vqa', body: form({ image: png }) }), 400, 'missing_question'],
      ['an empty question on /v1/vqa', async () => ({ path: '/v1/vqa', body: form({ image: png, question: '   ' }) }), 400, 'missing_question'],
      ['a question over the limit on /v1/vqa', async () => ({ path: '/v1/vqa', body: form({ image: png, question: 'q'.repeat(51) }) }), 422, 'question_too_long'],
      ['a question over the multipart field size on /v1/vqa', async () => ({ path: '/v1/vqa', body: form({ image: png, question: 'q'.repeat(70_000) }) }), 422, 'question_too_long'],
      ['params over the multipart field size', async () => ({ body: form({ image: png, params: ' '.repeat(70_000) }) }), 413, 'payload_too_large'],
      ['two image files', async () => ({ body: (() => { const data = form({ image: png }); data.append('image', new Blob([new Uint8Array(png)]), 'b.png'); return data; })() }), 400, 'invalid_multipart'],
    ])('%s → %i %s', async (_name, make, status, code) => {
      const { path = '/v1/captions', ...init } = await make();
      await expectRefused(() => fetch(`${base}${path}`, { method: 'POST', ...init }), status, code);
    });

    it('names the format found in a 415', async () => {
      const error = await expectRefused(() => fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: Buffer.from('GIF89a\x01\x00\x01\x00') }) }), 415, 'unsupported_media_type');
      expect(error.message).toMatch(/GIF/);
    });

    it('keeps the client request id on errors', async () => {
      const error = await expectRefused(
        () => fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': 'trace-me' }, body: form({ image: Buffer.from('nope') }) }),
        415,
        'unsupported_media_type',
      );
      expect(error.requestId).toBe('trace-me');
    });
  });

  describe('maps router failures (one table)', () => {
    it.each([
      [GrpcStatus.DEADLINE_EXCEEDED, 408, 'deadline_exceeded'],
      [GrpcStatus.UNAVAILABLE, 503, 'router_unavailable'],
      [GrpcStatus.INVALID_ARGUMENT, 400, 'invalid_argument'],
      [GrpcStatus.NOT_FOUND, 404, 'not_found'],
      [GrpcStatus.RESOURCE_EXHAUSTED, 429, 'overloaded'],
      [GrpcStatus.INTERNAL, 502, 'router_error'],
    ])('gRPC %i → %i %s', async (grpcCode, status, code) => {
      router.behaviour = async () => {
        throw new RouterCallError(grpcCode, 'canned failure');
      };
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': `map-${grpcCode}` }, body: form({ image: png }) });
      expect(response.status).toBe(status);
      expect(response.headers.get('x-request-id')).toBe(`map-${grpcCode}`);
      expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code, requestId: `map-${grpcCode}` });
    });

    it('answers 500 internal_error without internals when the router adapter throws something unexpected', async () => {
      router.behaviour = async () => {
        throw new TypeError('secret internal detail');
      };
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect(response.status).toBe(500);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error).toMatchObject({ code: 'internal_error', message: 'internal error' });
    });
  });

  it('GET /v1/requests/{id}: a stored result, 404 when absent, 400 for an invalid id', async () => {
    const stored = cannedResult('stored-req-1');
    await redis.set(createRedisKeys(config.KEY_PREFIX).resultKey('stored-req-1'), JSON.stringify(stored), 'EX', 60);
    const found = await fetch(`${base}/v1/requests/stored-req-1`);
    expect(found.status).toBe(200);
    expect(await found.json()).toEqual(stored);

    const missing = await fetch(`${base}/v1/requests/never-seen`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: unknown }).error).toMatchObject({ code: 'request_not_found' });

    const invalid = await fetch(`${base}/v1/requests/${'x'.repeat(129)}`);
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: unknown }).error).toMatchObject({ code: 'invalid_request_id' });
  });

  it('GET /v1/experts lists the router’s experts', async () => {
    const response = await fetch(`${base}/v1/experts`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(CANNED_EXPERTS);
  });

  it('health: live always; ready only with Redis PONG and a SERVING router', async () => {
    const live = await fetch(`${base}/v2/health/live`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'live' });

    const ready = await fetch(`${base}/v2/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { redis: { ok: true }, router: { ok: true, detail: 'SERVING' } } });

    router.health = { serving: false, status: 'NOT_SERVING' };
    const notReady = await fetch(`${base}/v2/health/ready`);
    expect(notReady.status).toBe(503);
    const body = (await notReady.json()) as { error: { code: string; message: string; details: unknown } };
    expect(body.error).toMatchObject({ code: 'not_ready', details: { checks: { redis: { ok: true }, router: { ok: false, detail: 'NOT_SERVING' } } } });
    expect(body.error.message).toMatch(/router: NOT_SERVING/);
  });

  it('unknown routes and methods get the same JSON error shape', async () => {
    const response = await fetch(`${base}/v1/nothing-here`, { headers: { 'X-Request-Id': 'lost' } });
    expect(response.status).toBe(404);
    expect(response.headers.get('x-request-id')).toBe('lost');
    expect(await response.json()).toEqual({ error: { code: 'not_found', message: expect.any(String), requestId: 'lost' } });
    const wrongMethod = await fetch(`${base}/v1/captions`);
    expect(wrongMethod.status).toBe(404);
  });

  it('serves the OpenAPI document at /docs-json and the UI at /docs, covering every route', async () => {
    const response = await fetch(`${base}/docs-json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths).sort()).toEqual(['/v1/captions', '/v1/experts', '/v1/requests/{id}', '/v1/vqa', '/v2/health/live', '/v2/health/ready']);
    expect(Object.keys(document.components.schemas)).toEqual(expect.arrayContaining(['InferenceResult', 'ErrorResponse', 'GenerationParams']));
    const ui = await fetch(`${base}/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/swagger/i);
  });
});

describe('gateway with Redis down', () => {
  it('answers 503 storage_unavailable for inference and not_ready for readiness, without calling the router', async () => {
    const config = testConfig({ REDIS_URL: 'redis://127.0.0.1:1' });
    const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 0, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
    redis.on('error', () => {});
    const router = new FakeRouter();
    const gateway = await createGatewayApp(config, { router, redis, logger: silent });
    try {
      const base = await gateway.listen();
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: (await images.png()).toString('base64') }) });
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code: 'storage_unavailable' });
      expect(router.calls).toHaveLength(0);
      const ready = await fetch(`${base}/v2/health/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { error: unknown }).error).toMatchObject({ code: 'not_ready', details: { checks: { redis: { ok: false } } } });
    } finally {
      await gateway.close();
      redis.disconnect();
    }
  });
});

describe('gateway shutdown', () => {
  it('finishes in-flight requests, then refuses new connections', async () => {
    const config = testConfig();
    const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
    const router = new FakeRouter();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    router.behaviour = async (call) => {
      await released;
      return cannedResult(call.requestId);
    };
    const gateway = await createGatewayApp(config, { router, redis, logger: silent });
    try {
      const base = await gateway.listen();
      const inFlight = fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: (await images.png()).toString('base64') }) });
      while (router.calls.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      const closed = gateway.close();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await expect(fetch(`${base}/v2/health/live`)).rejects.toThrow();
      release();
      const response = await inFlight;
      expect(response.status).toBe(200);
      await closed;
    } finally {
      release();
      await gateway.close();
      const keys = await redis.keys(`${config.KEY_PREFIX}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });
});
