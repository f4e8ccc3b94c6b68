import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { createRedisKeys, REFUSAL_REASONS, type InferenceResultJson } from '@rsmoe/contracts';
import { createLogger } from '@rsmoe/observability';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AnswerCall, CaptionCall, ExpertListJson } from './adapters/router.port';
import { RouterCallError } from './errors/router-status.mapping';
import { createGatewayApp, type GatewayApp } from './gateway.app';
import type { GatewayConfig } from './gateway.config';
import { EXPERT_LIST_CACHE_MS } from './health/health.service';
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

  it('the Redis client of every request carries no BullMQ commands (the scenes queue has a connection of its own)', async () => {
    // A request first: its commands queue behind the scenes queue's start-up on a shared connection (BullMQ
    // asks Redis's version, then defines its commands), so by its answer a shared client would hold them.
    const response = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
    expect(response.status).toBe(200);
    // ioredis copies each command defined on a client into every MULTI opened on it: BullMQ's 64 would cost
    // each request's blob put and image binding ~40 µs apiece.
    const defined = Object.keys((redis as Redis & { scriptsSet: Record<string, unknown> }).scriptsSet);
    expect(defined.filter((name) => !name.startsWith('rsmoe'))).toEqual([]);
  });

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

  it('captions a multipart PNG: the fake router gets the sha256 ref, the deadline, its own mesh id and the client id as correlation id', async () => {
    const before = Date.now();
    const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': 'client-id_42' }, body: form({ image: png }) });
    expect(response.status).toBe(200);
    const meshId = response.headers.get('x-request-id')!;
    expect(meshId).toMatch(/^[0-9a-f]{32}$/);
    expect(response.headers.get('x-correlation-id')).toBe('client-id_42');
    expect(await response.json()).toEqual({ ...cannedResult(meshId), correlationId: 'client-id_42' });

    const { method, call } = router.calls.at(-1)!;
    expect(method).toBe('caption');
    expect(call.requestId).toBe(meshId);
    expect(call.correlationId).toBe('client-id_42');
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

  describe('results belong to their request', () => {
    /** A router that captions each image by its digest, slowly enough for requests to overlap. */
    const byImage = async (call: CaptionCall | AnswerCall): Promise<InferenceResultJson> => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      const base = cannedResult(call.requestId, 'question' in call ? 'vqa' : 'caption', 'question' in call ? call.question : undefined);
      return 'question' in call ? { ...base, answer: `answer about ${call.images[0].sha256}` } : { ...base, caption: `caption of ${call.images[0].sha256}` };
    };

    it('two different images with the same X-Request-Id, in turn and at once, get their own results and different mesh ids', async () => {
      router.behaviour = byImage;
      const other = await images.png(12, 12);
      const send = (image: Buffer, path = '/v1/captions', extra: Record<string, string> = {}) =>
        fetch(`${base}${path}`, { method: 'POST', headers: { 'X-Request-Id': 'x1' }, body: form({ image, ...extra }) });
      const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
      const sequential = [await send(png), await send(other)];
      const concurrent = await Promise.all([send(png), send(other), send(png, '/v1/vqa', { question: 'Is there a road?' })]);
      const answers = [...sequential, ...concurrent];
      expect(answers.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
      const bodies = (await Promise.all(answers.map((response) => response.json()))) as InferenceResultJson[];
      const meshIds = answers.map((response) => response.headers.get('x-request-id'));
      expect(new Set(meshIds).size).toBe(5);
      bodies.forEach((body, i) => {
        expect(body.requestId).toBe(meshIds[i]);
        expect(body.correlationId).toBe('x1');
        expect(answers[i].headers.get('x-correlation-id')).toBe('x1');
      });
      expect(bodies.map((body) => body.caption ?? body.answer)).toEqual([
        `caption of ${sha(png)}`,
        `caption of ${sha(other)}`,
        `caption of ${sha(png)}`,
        `caption of ${sha(other)}`,
        `answer about ${sha(png)}`,
      ]);
      expect(bodies[4].task).toBe('vqa');
    });

    it('accepts X-Correlation-Id (it wins over X-Request-Id) and refuses an invalid one naming the header', async () => {
      const both = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Correlation-Id': 'corr-1', 'X-Request-Id': 'req-1' }, body: form({ image: png }) });
      expect(both.status).toBe(200);
      expect(both.headers.get('x-correlation-id')).toBe('corr-1');
      expect(router.calls.at(-1)!.call.correlationId).toBe('corr-1');
      const none = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect(none.headers.get('x-correlation-id')).toBeNull();
      expect(router.calls.at(-1)!.call.correlationId).toBeUndefined();
      expect(((await none.json()) as InferenceResultJson).correlationId).toBeUndefined();
      const error = await expectRefused(
        () => fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Correlation-Id': 'a b' }, body: form({ image: png }) }),
        400,
        'invalid_correlation_id',
      );
      expect(error.message).toMatch(/X-Correlation-Id/);
      const tooLong = await expectRefused(
        () => fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': 'r'.repeat(129) }, body: form({ image: png }) }),
        400,
        'invalid_request_id',
      );
      expect(tooLong.message).toMatch(/X-Request-Id/);
    });

    it('never answers another request’s result: a router mix-up is a 502 router_error without its content', async () => {
      router.behaviour = async (call) => ({ ...cannedResult(`${call.requestId}x`), caption: 'someone else’s caption' });
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect(response.status).toBe(502);
      const text = await response.text();
      expect(JSON.parse(text).error).toMatchObject({ code: 'router_error' });
      expect(text).not.toMatch(/someone else/);
      router.behaviour = async (call) => cannedResult(call.requestId, 'vqa');
      const wrongTask = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect(wrongTask.status).toBe(502);
    });
  });

  it('W3C traceparent: the client’s trace continues under a new gateway span, forwarded to the router and returned; a bad one starts a new trace', async () => {
    const offered = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { traceparent: offered }, body: form({ image: png }) });
    expect(response.status).toBe(200);
    const returned = response.headers.get('traceparent')!;
    expect(returned).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(returned).not.toBe(offered);
    expect(router.calls.at(-1)!.call.traceparent).toBe(returned);
    for (const bad of ['garbage', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', undefined]) {
      const fresh = await fetch(`${base}/v1/captions`, { method: 'POST', headers: bad === undefined ? {} : { traceparent: bad }, body: form({ image: png }) });
      expect(fresh.status).toBe(200);
      const started = fresh.headers.get('traceparent')!;
      expect(started).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(started.split('-')[1]).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      expect(router.calls.at(-1)!.call.traceparent).toBe(started);
    }
  });

  describe('validates params once, at the edge, with the experts’ schema', () => {
    it.each<[string, unknown, RegExp]>([
      ['maxNewTokens over the experts’ limit', { maxNewTokens: 513 }, /params\.maxNewTokens/],
      ['maxNewTokens 1e300', { maxNewTokens: 1e300 }, /params\.maxNewTokens/],
      ['numBeams over 8', { numBeams: 9 }, /params\.numBeams/],
      ['doSample with beam search', { doSample: true, numBeams: 2 }, /params\.doSample.*beam/],
      ['too many stop strings', { stopStrings: Array.from({ length: 17 }, (_, i) => `s${i}`) }, /params\.stopStrings/],
      ['stop strings too long together', { stopStrings: ['x'.repeat(600), 'y'.repeat(600)] }, /params\.stopStrings.*1024/],
      ['an empty stop string', { stopStrings: [''] }, /params\.stopStrings/],
      ['an unknown param', { maxTokens: 3 }, /maxTokens/],
    ])('%s → 400 invalid_params naming the field (JSON and multipart)', async (_name, params, field) => {
      const viaJson = await expectRefused(() => postJson('/v1/captions', { image: png.toString('base64'), params }), 400, 'invalid_params');
      expect(viaJson.message).toMatch(field);
      const viaForm = await expectRefused(() => fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png, params: JSON.stringify(params) }) }), 400, 'invalid_params');
      expect(viaForm.message).toMatch(field);
    });

    it('accepts params at the limits', async () => {
      const response = await postJson('/v1/captions', { image: png.toString('base64'), params: { maxNewTokens: 512, numBeams: 8, stopStrings: Array.from({ length: 16 }, () => 'x'.repeat(64)) } });
      expect(response.status).toBe(200);
    });

    it('10 MB of stopStrings is a 413, never a 429 or a gRPC message', async () => {
      const huge = { image: png.toString('base64'), params: { stopStrings: Array.from({ length: 10_000 }, () => 'z'.repeat(1000)) } };
      const viaJson = await expectRefused(() => postJson('/v1/captions', huge), 413, 'payload_too_large');
      expect(viaJson.message).not.toMatch(/grpc|message larger/i);
      await expectRefused(() => fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png, params: JSON.stringify(huge.params) }) }), 413, 'payload_too_large');
    });
  });

  describe('maps what the mesh answers', () => {
    const expertOutput = (expertId: string, status: 'ok' | 'failed' | 'timed_out', errorCode?: 'invalid_image' | 'deadline_exceeded' | 'internal') => ({
      ...cannedResult('x').experts[0],
      expertId,
      status,
      text: status === 'ok' ? 'text' : '',
      ...(status === 'ok' ? {} : { error: `${expertId} went wrong`, ...(errorCode ? { errorCode } : {}) }),
    });

    it('every expert failed or timed out → 502 experts_failed with each expert’s detail', async () => {
      router.behaviour = async (call) => ({
        ...cannedResult(call.requestId),
        caption: '',
        experts: [expertOutput('theme', 'failed', 'internal'), expertOutput('object', 'timed_out', 'deadline_exceeded'), expertOutput('relation', 'failed')],
        degraded: true,
        missingExperts: ['theme', 'object', 'relation'],
      });
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect(response.status).toBe(502);
      const body = (await response.json()) as { error: { code: string; message: string; details: { experts: unknown[] } } };
      expect(body.error.code).toBe('experts_failed');
      expect(body.error.details.experts).toEqual([
        { expertId: 'theme', status: 'failed', errorCode: 'internal', error: 'theme went wrong' },
        { expertId: 'object', status: 'timed_out', errorCode: 'deadline_exceeded', error: 'object went wrong' },
        { expertId: 'relation', status: 'failed', error: 'relation went wrong' },
      ]);
    });

    it('one good expert → 200 with degraded: true', async () => {
      router.behaviour = async (call) => ({
        ...cannedResult(call.requestId),
        experts: [expertOutput('theme', 'ok'), expertOutput('object', 'timed_out', 'deadline_exceeded')],
        degraded: true,
        missingExperts: ['object'],
      });
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ degraded: true, missingExperts: ['object'] });
    });

    it('the router finding the image unusable (INVALID_ARGUMENT "the image cannot be used…") → 422 invalid_image', async () => {
      router.behaviour = async () => {
        throw new RouterCallError(GrpcStatus.INVALID_ARGUMENT, 'the image cannot be used: every expert failed to decode it (theme: corrupt IDAT)');
      };
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect(response.status).toBe(422);
      expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code: 'invalid_image', message: expect.stringMatching(/^the image cannot be used/) });
    });

    it('a gRPC message-size refusal is a 413, not a 429, and does not leak the gRPC text', async () => {
      router.behaviour = async () => {
        throw new RouterCallError(GrpcStatus.RESOURCE_EXHAUSTED, 'Sent message larger than max (12000000 vs. 4194304)');
      };
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect(response.status).toBe(413);
      const text = await response.text();
      expect(JSON.parse(text).error).toMatchObject({ code: 'payload_too_large' });
      expect(text).not.toMatch(/larger than max|4194304/);
    });
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
      ['a file over the byte limit (the multipart reader)', async () => ({ body: form({ image: await images.noisyPng(160, 160) }) }), 413, 'payload_too_large'],
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

    it('echoes the client id as X-Correlation-Id on errors, under the mesh request id', async () => {
      let correlation: string | null = null;
      const error = await expectRefused(
        async () => {
          const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': 'trace-me' }, body: form({ image: Buffer.from('nope') }) });
          correlation = response.headers.get('x-correlation-id');
          return response;
        },
        415,
        'unsupported_media_type',
      );
      expect(error.requestId).toMatch(/^[0-9a-f]{32}$/);
      expect(correlation).toBe('trace-me');
    });
  });

  describe('maps router failures (one table)', () => {
    it.each([
      [GrpcStatus.DEADLINE_EXCEEDED, 408, 'deadline_exceeded'],
      [GrpcStatus.UNAVAILABLE, 503, 'router_unavailable'],
      [GrpcStatus.INVALID_ARGUMENT, 400, 'invalid_argument'],
      // Caption/Answer's only NOT_FOUND is the image this very request stored: lost on our side, not the client's 404.
      [GrpcStatus.NOT_FOUND, 503, 'image_lost'],
      [GrpcStatus.RESOURCE_EXHAUSTED, 429, 'overloaded'],
      [GrpcStatus.INTERNAL, 502, 'router_error'],
    ])('gRPC %i → %i %s', async (grpcCode, status, code) => {
      router.behaviour = async () => {
        throw new RouterCallError(grpcCode, 'canned failure');
      };
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': `map-${grpcCode}` }, body: form({ image: png }) });
      expect(response.status).toBe(status);
      expect(response.headers.get('x-correlation-id')).toBe(`map-${grpcCode}`);
      const meshId = response.headers.get('x-request-id');
      expect(meshId).toMatch(/^[0-9a-f]{32}$/);
      expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code, requestId: meshId });
    });

    it('UNAVAILABLE with reason experts_unavailable → 503 experts_unavailable naming the experts down, Retry-After 1; without it router_unavailable', async () => {
      const details = 'no live worker for caption experts theme, object (queues expert.theme, expert.object)';
      router.behaviour = async () => {
        throw new RouterCallError(GrpcStatus.UNAVAILABLE, details, { reason: REFUSAL_REASONS.expertsUnavailable });
      };
      const down = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect([down.status, down.headers.get('retry-after')]).toEqual([503, '1']);
      expect(((await down.json()) as { error: unknown }).error).toMatchObject({ code: 'experts_unavailable', message: expect.stringContaining('theme, object') });

      router.behaviour = async () => {
        throw new RouterCallError(GrpcStatus.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:50051');
      };
      const unreachable = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png }) });
      expect(unreachable.status).toBe(503);
      const text = await unreachable.text();
      expect(JSON.parse(text).error).toMatchObject({ code: 'router_unavailable' });
      expect(text).not.toMatch(/ECONNREFUSED/);
    });

    it('NOT_FOUND for the image this request stored (a Redis restart lost it) → 503 image_lost with Retry-After 1, never 404', async () => {
      router.behaviour = async (call) => {
        throw new RouterCallError(GrpcStatus.NOT_FOUND, `image ${call.images[0].sha256} is not in the blob store (expired or never stored)`, { reason: REFUSAL_REASONS.imageMissing });
      };
      for (const path of ['/v1/captions', '/v1/vqa']) {
        const response = await fetch(`${base}${path}`, { method: 'POST', body: form({ image: png, ...(path === '/v1/vqa' ? { question: 'Is there a road?' } : {}) }) });
        expect([response.status, response.headers.get('retry-after')]).toEqual([503, '1']);
        expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code: 'image_lost' });
      }
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

  it('GET /v1/requests/{id}: the stored result by its mesh id only; 404 for a client-chosen id even when stored; 400 for an invalid id', async () => {
    const keys = createRedisKeys(config.KEY_PREFIX);
    // A request made through the gateway: its result is stored (by the router/aggregator) under the mesh id.
    const made = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': 'mine' }, body: form({ image: png }) });
    const meshId = made.headers.get('x-request-id')!;
    const stored = { ...cannedResult(meshId), correlationId: 'mine' };
    await redis.set(keys.resultKey(meshId), JSON.stringify(stored), 'EX', 60);
    const found = await fetch(`${base}/v1/requests/${meshId}`);
    expect(found.status).toBe(200);
    expect(await found.json()).toEqual(stored);

    // Neither the client's own id nor any other guessable id reads a result, even one stored under it.
    await redis.set(keys.resultKey('mine'), JSON.stringify(cannedResult('mine')), 'EX', 60);
    for (const id of ['mine', 'stored-req-1', meshId.toUpperCase(), `${meshId}0`]) {
      const other = await fetch(`${base}/v1/requests/${id}`);
      expect(other.status).toBe(404);
      expect(((await other.json()) as { error: unknown }).error).toMatchObject({ code: 'request_not_found' });
    }

    const missing = await fetch(`${base}/v1/requests/${'0'.repeat(32)}`);
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
    expect(response.headers.get('x-correlation-id')).toBe('lost');
    const meshId = response.headers.get('x-request-id');
    expect(await response.json()).toEqual({ error: { code: 'not_found', message: expect.any(String), requestId: meshId } });
    const wrongMethod = await fetch(`${base}/v1/captions`);
    expect(wrongMethod.status).toBe(404);
  });

  it('serves the OpenAPI document at /docs-json and the UI at /docs, covering every route', async () => {
    const response = await fetch(`${base}/docs-json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths).sort()).toEqual([
      '/v1/captions',
      '/v1/changes',
      '/v1/chat/completions',
      '/v1/classify',
      '/v1/experts',
      '/v1/grounding',
      '/v1/models',
      '/v1/referring',
      '/v1/requests/{id}',
      '/v1/scenes',
      '/v1/scenes/{id}',
      '/v1/scenes/{id}/geojson',
      '/v1/scenes/{id}/preview.png',
      '/v1/segmentation',
      '/v1/vqa',
      '/v2/health/live',
      '/v2/health/ready',
    ]);
    // RSUniVLM's endpoints: their fields, the asynchronous 202, their own error codes and the long deadline.
    type TaskOperation = { requestBody: { content: Record<string, { schema: { properties: Record<string, { maximum?: number }> } }> }; responses: Record<string, { description: string }> };
    const segmentation = (document.paths['/v1/segmentation'] as { post: TaskOperation }).post;
    expect(Object.keys(segmentation.requestBody.content['application/json'].schema.properties)).toEqual(['image', 'classes', 'query', 'params', 'timeoutMs']);
    expect(segmentation.requestBody.content['application/json'].schema.properties.timeoutMs.maximum).toBe(1_800_000);
    expect(segmentation.responses['202'].description).toMatch(/respond-async/);
    expect(segmentation.responses['422'].description).toMatch(/task_not_supported/);
    const changes = (document.paths['/v1/changes'] as { post: TaskOperation }).post;
    expect(Object.keys(changes.requestBody.content['multipart/form-data'].schema.properties)).toEqual(['before', 'after', 'output', 'params', 'timeoutMs']);
    expect(changes.responses['422'].description).toMatch(/image_size_mismatch/);
    expect(Object.keys(document.components.schemas)).toEqual(expect.arrayContaining(['InferenceResult', 'ErrorResponse', 'GenerationParams']));
    // The id headers, the new statuses and the params bounds are documented.
    type Operation = { parameters: Array<{ name: string }>; responses: Record<string, { description: string; headers?: Record<string, unknown> }> };
    const caption = (document.paths['/v1/captions'] as { post: Operation }).post;
    expect(caption.parameters.map((parameter) => parameter.name)).toEqual(expect.arrayContaining(['X-Correlation-Id', 'X-Request-Id', 'traceparent']));
    expect(Object.keys(caption.responses['200'].headers ?? {})).toEqual(['X-Request-Id', 'X-Correlation-Id', 'traceparent']);
    expect(Object.keys(caption.responses['429'].headers ?? {})).toEqual(['Retry-After']);
    expect(caption.responses['502'].description).toMatch(/experts_failed/);
    expect(caption.responses['422'].description).toMatch(/invalid_image/);
    expect(caption.responses['408'].description).toMatch(/body_timeout/);
    const params = document.components.schemas.GenerationParams as { properties: Record<string, { maximum?: number; maxItems?: number }> };
    expect([params.properties.maxNewTokens.maximum, params.properties.numBeams.maximum, params.properties.stopStrings.maxItems]).toEqual([512, 8, 16]);
    const ui = await fetch(`${base}/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/swagger/i);
  });
});

describe('gateway readiness reports degraded capacity', () => {
  let config: GatewayConfig;
  let redis: Redis;
  let router: FakeRouter;
  let gateway: GatewayApp;
  let base: string;

  beforeAll(async () => {
    config = testConfig();
    redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
    router = new FakeRouter();
    gateway = await createGatewayApp(config, { router, redis, logger: silent });
    base = await gateway.listen();
  });

  afterAll(async () => {
    await gateway?.close();
    await redis.quit();
  });

  /** The fake router's ListExperts with these live worker counts (undefined: not polled yet) and tasks. */
  function experts(live: Record<string, number | undefined>, tasks: Record<string, Array<'caption' | 'vqa'>> = {}): ExpertListJson {
    return {
      ...CANNED_EXPERTS,
      experts: Object.entries(live).map(([id, liveWorkers]) => ({
        ...CANNED_EXPERTS.experts[0],
        id,
        queue: `expert.${id}`,
        tasks: tasks[id] ?? ['caption', 'vqa'],
        ...(liveWorkers === undefined ? {} : { liveWorkers, waitingJobs: 0 }),
      })),
    };
  }

  /** Readiness after the ListExperts cache has expired. */
  async function readyAfterCache(): Promise<{ status: number; body: Record<string, unknown> }> {
    await new Promise((resolve) => setTimeout(resolve, EXPERT_LIST_CACHE_MS + 50));
    const response = await fetch(`${base}/v2/health/ready`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('200 and not degraded with every expert live or not yet known; ListExperts is asked at most once per cache period', async () => {
    router.experts = experts({ theme: 2, object: 1, relation: undefined });
    const calls = router.listExpertsCalls;
    const first = await readyAfterCache();
    expect(first).toMatchObject({ status: 200, body: { status: 'ready', degraded: false, down: [], checks: { experts: { ok: true, down: [] } } } });
    await Promise.all(Array.from({ length: 5 }, () => fetch(`${base}/v2/health/ready`).then((response) => response.text())));
    expect(router.listExpertsCalls - calls).toBe(1);
  });

  it('stays 200 while each task has a live expert, listing those down', async () => {
    router.experts = experts({ theme: 0, object: 1, relation: 0 });
    const { status, body } = await readyAfterCache();
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', degraded: true, down: ['theme', 'relation'], checks: { experts: { ok: true, down: ['theme', 'relation'], unservedTasks: [] } } });
  });

  it('503 not_ready naming the task when none of its experts is live (tasks from ListExperts)', async () => {
    // object is the only vqa expert and it is down; theme still captions.
    router.experts = experts({ theme: 1, object: 0 }, { theme: ['caption'], object: ['caption', 'vqa'] });
    const { status, body } = await readyAfterCache();
    expect(status).toBe(503);
    const error = body.error as { code: string; message: string; details: unknown };
    expect(error).toMatchObject({ code: 'not_ready', details: { checks: { experts: { ok: false, down: ['object'], unservedTasks: ['vqa'] } } } });
    expect(error.message).toMatch(/experts: no live expert for vqa \(down: object\)/);

    router.experts = experts({ theme: 0, object: 0 });
    const none = await readyAfterCache();
    expect(none.status).toBe(503);
    expect(none.body.error).toMatchObject({ details: { checks: { experts: { unservedTasks: ['caption', 'vqa'] } } } });
  });

  it('an older router without tasks: every expert counts for every task', async () => {
    router.experts = { ...experts({ theme: 0, object: 1 }), experts: experts({ theme: 0, object: 1 }).experts.map((expert) => ({ ...expert, tasks: [] })) };
    const { status, body } = await readyAfterCache();
    expect(status).toBe(200);
    expect(body).toMatchObject({ degraded: true, down: ['theme'] });
  });

  it('503 when ListExperts fails', async () => {
    router.experts = new RouterCallError(GrpcStatus.UNAVAILABLE, 'connection refused');
    const { status, body } = await readyAfterCache();
    expect(status).toBe(503);
    expect(body.error).toMatchObject({ code: 'not_ready', details: { checks: { experts: { ok: false } } } });
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
