import 'reflect-metadata';
import { connect } from 'node:net';
import { createRedisKeys } from '@rsmoe/contracts';
import { createLogger } from '@rsmoe/observability';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp } from './gateway.app';
import { createTestApiKey, images, multipartForm, startTestGateway, type TestGateway } from './testing/gateway-test-kit';

interface ErrorJson {
  error: { code: string; message: string; requestId: string };
}

/** Sends the request line, headers and `bodyStart` of a request whose declared body is far longer, and reads what comes back. */
function partialUpload(base: string, head: string, bodyStart: Buffer): Promise<{ status: number | undefined; text: string; afterMs: number }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(Number(port), hostname);
    let text = '';
    const done = (): void => {
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]) || undefined, text, afterMs: Date.now() - started });
    };
    const giveUp = setTimeout(done, 5_000);
    socket.on('data', (data) => {
      text += data.toString('latin1');
      if (text.includes('\r\n\r\n') && /"requestId"/.test(text)) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    socket.write(head);
    socket.write(bodyStart);
  });
}

describe('API keys (AUTH_MODE=required)', () => {
  let t: TestGateway;
  let png: Buffer;
  const caption = (headers: Record<string, string>, form = multipartForm({ image: png })) =>
    fetch(`${t.base}/v1/captions`, { method: 'POST', headers, body: form });

  beforeAll(async () => {
    t = await startTestGateway({ AUTH_MODE: 'required' });
    png = await images.png();
  });
  afterAll(() => t.close());
  afterEach(() => {
    t.router.calls.length = 0;
  });

  it('answers 401 unauthenticated without a key or with an unknown one, before anything is stored or routed', async () => {
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer rsk_not-a-key' }, { 'x-api-key': 'rsk_not-a-key' }, { authorization: 'Basic dXNlcjpwdw==' }];
    for (const headers of attempts) {
      const res = await caption(headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      const body = (await res.json()) as ErrorJson;
      expect(body.error.code).toBe('unauthenticated');
      expect(body.error.requestId).toBe(res.headers.get('x-request-id'));
    }
    expect(t.router.calls).toHaveLength(0);
    expect(await t.redis.keys(`${t.config.KEY_PREFIX}:blob:*`)).toEqual([]);
    expect((await fetch(`${t.base}/v1/experts`)).status).toBe(401);
    expect((await fetch(`${t.base}/v1/requests/${'a'.repeat(32)}`)).status).toBe(401);
  });

  it('lets health and docs through without a key', async () => {
    expect((await fetch(`${t.base}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${t.base}/docs-json`)).status).toBe(200);
    expect((await fetch(`${t.base}/docs`)).status).toBe(200);
  });

  it('documents the key schemes and the key answers in OpenAPI', async () => {
    type Operation = { security?: unknown[]; responses: Record<string, { headers?: Record<string, unknown> }> };
    const doc = (await (await fetch(`${t.base}/docs-json`)).json()) as {
      components: { securitySchemes: Record<string, unknown> };
      paths: Record<string, { get?: Operation; post?: Operation }>;
    };
    expect(doc.components.securitySchemes).toMatchObject({ bearer: { type: 'http', scheme: 'bearer' }, apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } });
    const captions = doc.paths['/v1/captions']!.post!;
    expect(captions.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(Object.keys(captions.responses)).toEqual(expect.arrayContaining(['401', '403', '429']));
    expect(Object.keys(captions.responses['200']!.headers ?? {})).toEqual(expect.arrayContaining(['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset']));
    expect(doc.paths['/v2/health/live']!.get!.security).toBeUndefined();
  });

  it('accepts a key as Bearer or X-API-Key and reports the bucket in RateLimit-* headers', async () => {
    const secret = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'both-ways', ratePerSecond: 1, burst: 5 });
    const bearer = await caption({ authorization: `Bearer ${secret}` });
    expect(bearer.status).toBe(200);
    expect(bearer.headers.get('ratelimit-limit')).toBe('5');
    expect(bearer.headers.get('ratelimit-remaining')).toBe('4');
    expect(Number(bearer.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(1);
    const header = await caption({ 'x-api-key': secret });
    expect(header.status).toBe(200);
    expect(header.headers.get('ratelimit-remaining')).toBe('3');
    expect(t.router.calls).toHaveLength(2);
  });

  it('answers 403 forbidden for a task the key may not run, and does not count it', async () => {
    const secret = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'vqa-only', tasks: ['vqa'], dailyQuota: 1 });
    for (const path of ['/v1/captions', '/v1/Captions/', '/v1/changes']) {
      const res = await fetch(`${t.base}${path}`, { method: 'POST', headers: { 'x-api-key': secret }, body: multipartForm({ image: png }) });
      expect(res.status, path).toBe(403);
      expect(((await res.json()) as ErrorJson).error.code).toBe('forbidden');
    }
    expect(t.router.calls).toHaveLength(0);
    const vqa = await fetch(`${t.base}/v1/vqa`, { method: 'POST', headers: { 'x-api-key': secret }, body: multipartForm({ image: png, question: 'Is there a road?' }) });
    expect(vqa.status).toBe(200);
  });

  it('answers 429 rate_limited with Retry-After and RateLimit-* once the bucket is empty', async () => {
    const secret = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'slow', ratePerSecond: 0.01, burst: 2 });
    expect((await caption({ 'x-api-key': secret })).status).toBe(200);
    expect((await fetch(`${t.base}/v1/experts`, { headers: { 'x-api-key': secret } })).status).toBe(200);
    const res = await caption({ 'x-api-key': secret });
    expect(res.status).toBe(429);
    expect(((await res.json()) as ErrorJson).error.code).toBe('rate_limited');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(99);
    expect(res.headers.get('ratelimit-limit')).toBe('2');
    expect(res.headers.get('ratelimit-remaining')).toBe('0');
    expect(res.headers.get('connection')).toBe('close');
  });

  it('answers 429 quota_exceeded past the daily quota, counting one image per processed request (a change pair too)', async () => {
    const secret = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'quota2', dailyQuota: 2 });
    // Not processed (400 missing_image): given back.
    const invalid = await fetch(`${t.base}/v1/captions`, { method: 'POST', headers: { 'x-api-key': secret, 'content-type': 'application/json' }, body: '{}' });
    expect(invalid.status).toBe(400);
    const change = await fetch(`${t.base}/v1/changes`, { method: 'POST', headers: { 'x-api-key': secret }, body: multipartForm({ before: png, after: png }) });
    expect(change.status).toBe(200);
    expect((await caption({ 'x-api-key': secret })).status).toBe(200);
    const res = await caption({ 'x-api-key': secret });
    expect(res.status).toBe(429);
    expect(((await res.json()) as ErrorJson).error.code).toBe('quota_exceeded');
    const untilMidnight = 86_400 - Math.floor((Date.now() % 86_400_000) / 1000);
    expect(Math.abs(Number(res.headers.get('retry-after')) - untilMidnight)).toBeLessThanOrEqual(2);
    expect(res.headers.get('ratelimit-limit')).toBe('2');
    expect(res.headers.get('ratelimit-remaining')).toBe('0');
    expect(Math.abs(Number(res.headers.get('ratelimit-reset')) - untilMidnight)).toBeLessThanOrEqual(2);
  });

  it('refuses a bad key before reading the body: a huge upload gets its 401 while still sending', async () => {
    const declared = 50 * 1024 * 1024;
    const head = [
      'POST /v1/captions HTTP/1.1',
      'Host: x',
      'X-API-Key: rsk_wrong',
      'Content-Type: multipart/form-data; boundary=b',
      `Content-Length: ${declared}`,
      '',
      '',
    ].join('\r\n');
    const start = Buffer.from('--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n');
    const answer = await partialUpload(t.base, head, Buffer.concat([start, Buffer.alloc(16 * 1024)]));
    expect(answer.status).toBe(401);
    expect(answer.text).toMatch(/"code":"unauthenticated"/);
    expect(answer.text.toLowerCase()).toContain('connection: close');
    expect(t.router.calls).toHaveLength(0);
  });

  it('answers GET /v1/requests/{id} only to the key that made the request', async () => {
    const owner = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'owner' });
    const other = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'other' });
    const submitted = await caption({ 'x-api-key': owner, prefer: 'respond-async' });
    expect(submitted.status).toBe(202);
    const id = submitted.headers.get('x-request-id')!;
    expect(await t.redis.ttl(createRedisKeys(t.config.KEY_PREFIX).requestOwnerKey(id))).toBeGreaterThan(3_000);
    let mine: Response;
    do mine = await fetch(`${t.base}/v1/requests/${id}`, { headers: { 'x-api-key': owner } });
    while (mine.status === 202);
    expect(mine.status).toBe(200);
    const theirs = await fetch(`${t.base}/v1/requests/${id}`, { headers: { 'x-api-key': other } });
    const unknown = await fetch(`${t.base}/v1/requests/${'0'.repeat(32)}`, { headers: { 'x-api-key': other } });
    expect(theirs.status).toBe(404);
    expect(unknown.status).toBe(404);
    const [a, b] = [(await theirs.json()) as ErrorJson, (await unknown.json()) as ErrorJson];
    expect(a.error.code).toBe('request_not_found');
    expect(a.error.message.replace(id, '<id>')).toBe(b.error.message.replace('0'.repeat(32), '<id>'));
    // A synchronous request's stored result is bound the same way.
    const sync = await caption({ 'x-api-key': owner });
    const syncId = sync.headers.get('x-request-id')!;
    expect(await t.redis.get(createRedisKeys(t.config.KEY_PREFIX).requestOwnerKey(syncId))).toBeTruthy();
  });

  it('shares one bucket per key between two gateways on one Redis', async () => {
    const second = await createGatewayApp(t.config, { router: t.router, redis: t.redis, logger: createLogger('gateway', { level: 'error', write: () => {} }) });
    const secondBase = await second.listen();
    try {
      const secret = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'shared', ratePerSecond: 0.01, burst: 3 });
      const statuses = [];
      for (const base of [t.base, secondBase, t.base, secondBase]) {
        statuses.push((await fetch(`${base}/v1/experts`, { headers: { 'x-api-key': secret } })).status);
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
    } finally {
      await second.close();
    }
  });
});
