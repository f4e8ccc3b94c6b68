import 'reflect-metadata';
import { connect, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { createLogger } from '@rsmoe/observability';
import { ConfigError } from '@rsmoe/config';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RouterCallError } from './errors/router-status.mapping';
import { createGatewayApp, type GatewayApp } from './gateway.app';
import { loadGatewayConfig, type GatewayConfig } from './gateway.config';
import { REFUSED_BODY_DRAIN_MS } from './http/edge-guards.middleware';
import { cannedResult, FakeRouter, images, testConfig } from './testing/gateway-test-kit';

const silent = createLogger('gateway', { level: 'error', write: () => {} });

/** What a raw TCP client saw: the bytes answered, and how long until the server closed the connection. */
interface RawExchange {
  text: string;
  status: number | undefined;
  /** When the first byte of an answer came (undefined: none came). */
  answeredAfterMs: number | undefined;
  closedAfterMs: number;
}

/**
 * Sends `chunks` on a raw socket (each after `gapMs`), never finishing on purpose when the test says so,
 * and resolves when the server closes the connection (or after `giveUpMs`, as status undefined).
 */
function rawExchange(base: string, chunks: Array<string | Buffer>, options: { gapMs?: number; giveUpMs?: number } = {}): Promise<RawExchange> {
  const { port, hostname } = new URL(base);
  const started = Date.now();
  return new Promise((resolve) => {
    const socket: Socket = connect(Number(port), hostname);
    let text = '';
    let answeredAfterMs: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      clearTimeout(giveUp);
      socket.destroy();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ text, status: match ? Number(match[1]) : undefined, answeredAfterMs, closedAfterMs: Date.now() - started });
    };
    const giveUp = setTimeout(finish, options.giveUpMs ?? 10_000);
    socket.on('data', (data) => {
      answeredAfterMs ??= Date.now() - started;
      text += data.toString('latin1');
    });
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      let i = 0;
      const next = (): void => {
        if (i >= chunks.length || socket.destroyed) return;
        socket.write(chunks[i++]);
        timer = setTimeout(next, options.gapMs ?? 0);
      };
      next();
    });
  });
}

/** A gateway with `overrides`, a fake router and real Redis under its own prefix; closed after each test. */
describe('the edge holds', () => {
  let redis: Redis;
  const opened: Array<{ gateway: GatewayApp; config: GatewayConfig }> = [];

  beforeAll(() => {
    redis = new Redis(testConfig().REDIS_URL, { maxRetriesPerRequest: 1 });
  });

  afterEach(async () => {
    for (const { gateway, config } of opened.splice(0)) {
      await gateway.close();
      const keys = await redis.keys(`${config.KEY_PREFIX}:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  });

  afterAll(async () => {
    await redis.quit();
  });

  async function start(overrides: Record<string, string> = {}, router = new FakeRouter()): Promise<{ base: string; router: FakeRouter; config: GatewayConfig }> {
    const config = testConfig(overrides);
    const gateway = await createGatewayApp(config, { router, redis, logger: silent });
    opened.push({ gateway, config });
    return { base: await gateway.listen(), router, config };
  }

  const multipartHead = (host: string, contentLength: number, boundary = 'B0UNDARY') =>
    `POST /v1/captions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${contentLength}\r\n\r\n`;

  describe('overload', () => {
    it('RESOURCE_EXHAUSTED with retry-after-ms → 429 overloaded with Retry-After in whole seconds (rounded up)', async () => {
      const { base, router } = await start();
      router.behaviour = async () => {
        throw new RouterCallError(GrpcStatus.RESOURCE_EXHAUSTED, 'expert.object has 40 waiting jobs', { retryAfterMs: 1_200 });
      };
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: (await images.png()).toString('base64') }) });
      expect(response.status).toBe(429);
      expect(response.headers.get('retry-after')).toBe('2');
      expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code: 'overloaded', details: { retryAfterMs: 1200 } });
    });

    it('without retry-after-ms: 429 with Retry-After 1, and nothing is remembered', async () => {
      const { base, router } = await start();
      let refuse = true;
      router.behaviour = async (call) => {
        if (refuse) throw new RouterCallError(GrpcStatus.RESOURCE_EXHAUSTED, 'busy');
        return cannedResult(call.requestId);
      };
      const body = JSON.stringify({ image: (await images.png()).toString('base64') });
      const send = () => fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const first = await send();
      expect([first.status, first.headers.get('retry-after')]).toEqual([429, '1']);
      refuse = false;
      expect((await send()).status).toBe(200);
    });

    it('after a refusal, further requests of that task are refused before their body is read; other tasks pass; then it lifts', async () => {
      const { base, router } = await start();
      router.behaviour = async () => {
        throw new RouterCallError(GrpcStatus.RESOURCE_EXHAUSTED, 'full', { retryAfterMs: 700 });
      };
      const png = await images.png();
      const json = (extra: Record<string, unknown> = {}) => JSON.stringify({ image: png.toString('base64'), ...extra });
      expect((await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json() })).status).toBe(429);
      const callsAfterRefusal = router.calls.length;
      router.behaviour = undefined;

      // Headers announce 10 MB, none of it is sent: the 429 comes anyway, and the connection is closed.
      const host = new URL(base).host;
      const early = await rawExchange(base, [multipartHead(host, 10_000_000)], { giveUpMs: 5_000 });
      expect(early.status).toBe(429);
      expect(early.text).toMatch(/\r\nretry-after: 1\r\n/i);
      expect(early.text).toMatch(/"code":"overloaded"/);
      expect(early.closedAfterMs).toBeLessThan(2_000);
      expect(router.calls.length).toBe(callsAfterRefusal);

      const vqa = await fetch(`${base}/v1/vqa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json({ question: 'Is there a road?' }) });
      expect(vqa.status).toBe(200);

      await new Promise((resolve) => setTimeout(resolve, 750));
      expect((await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json() })).status).toBe(200);
    });
  });

  describe('overload refusals drain the body before closing', () => {
    /**
     * The client runs in a worker thread: with client and server on one event loop the client has always
     * written its whole body before the server answers, and the reset never shows. Each upload is a fetch of a
     * multipart body (undici streams it in chunks); the worker reports each status or connection error code.
     */
    const UPLOADER = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { randomBytes } = require('node:crypto');
      (async () => {
        const seen = [];
        for (const size of workerData.sizes) {
          const bytes = randomBytes(size);
          const one = async () => {
            const form = new FormData();
            form.append('image', new Blob([bytes], { type: 'image/png' }), 'scene.png');
            try {
              const response = await fetch(workerData.url, { method: 'POST', body: form });
              const body = await response.json();
              seen.push([response.status, response.headers.get('connection'), response.headers.get('retry-after'), body.error && body.error.code].join(' '));
            } catch (error) {
              seen.push('error ' + String((error.cause && error.cause.code) || error));
            }
          };
          for (let round = 0; round < workerData.rounds; round++) await Promise.all(Array.from({ length: workerData.concurrency }, one));
        }
        parentPort.postMessage(seen);
      })();
    `;

    it('clients uploading ~1 MB (and tiny) multipart bodies while the gate is closed always read the 429, never EPIPE/ECONNRESET', async () => {
      const { base, router } = await start({ MAX_IMAGE_BYTES: String(2 * 1024 * 1024) });
      router.behaviour = async () => {
        throw new RouterCallError(GrpcStatus.RESOURCE_EXHAUSTED, 'full', { retryAfterMs: 30_000 });
      };
      const png = await images.png();
      expect((await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: png.toString('base64') }) })).status).toBe(429);
      const callsAfterRefusal = router.calls.length;

      const worker = new Worker(UPLOADER, { eval: true, workerData: { url: `${base}/v1/captions`, sizes: [1024 * 1024, 100], rounds: 5, concurrency: 4 } });
      try {
        const seen = await new Promise<string[]>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        });
        // Without the drain, about half of these were `error EPIPE`.
        expect(seen).toEqual(Array.from({ length: 40 }, () => '429 close 30 overloaded'));
      } finally {
        await worker.terminate();
      }
      expect(router.calls.length).toBe(callsAfterRefusal);
    });

    it('a refused upload that stalls is closed within the drain bound', async () => {
      const { base, router } = await start({ MAX_IMAGE_BYTES: String(2 * 1024 * 1024) });
      router.behaviour = async () => {
        throw new RouterCallError(GrpcStatus.RESOURCE_EXHAUSTED, 'full', { retryAfterMs: 30_000 });
      };
      expect((await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: (await images.png()).toString('base64') }) })).status).toBe(429);
      // 100 KB announced (within the limit), 10 bytes sent: the 429 comes at once, the close after the drain bound.
      const stalled = await rawExchange(base, [multipartHead(new URL(base).host, 100_000), '--B0UNDARY'], { giveUpMs: 6_000 });
      expect(stalled.status).toBe(429);
      expect(stalled.answeredAfterMs).toBeLessThan(1_000);
      expect(stalled.closedAfterMs).toBeGreaterThanOrEqual(REFUSED_BODY_DRAIN_MS - 100);
      expect(stalled.closedAfterMs).toBeLessThan(REFUSED_BODY_DRAIN_MS + 1_500);
    });
  });

  describe('body limits', () => {
    it('a 10 MB nested JSON body is refused by size (413) without blocking the event loop', async () => {
      const { base, router } = await start();
      const nested = `${'['.repeat(5_000_000)}${']'.repeat(5_000_000)}`;
      const liveTimes: number[] = [];
      let sending = true;
      const probe = (async () => {
        while (sending) {
          const t = performance.now();
          await fetch(`${base}/v2/health/live`);
          liveTimes.push(performance.now() - t);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const started = performance.now();
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: nested });
      const took = performance.now() - started;
      sending = false;
      await probe;
      expect(response.status).toBe(413);
      expect(((await response.json()) as { error: unknown }).error).toMatchObject({ code: 'payload_too_large' });
      expect(took).toBeLessThan(3_000);
      expect(Math.max(...liveTimes)).toBeLessThan(1_000);
      expect(router.calls).toHaveLength(0);
    });

    it('a declared Content-Length over the limit is answered 413 before a byte of the body is sent', async () => {
      const { base, router, config } = await start();
      const host = new URL(base).host;
      const json = await rawExchange(base, [`POST /v1/vqa HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${config.MAX_JSON_BODY_BYTES + 1}\r\n\r\n`], { giveUpMs: 1_500 });
      expect(json.status).toBe(413);
      expect(json.text).toMatch(/"code":"payload_too_large"/);
      expect(json.answeredAfterMs).toBeLessThan(1_000);
      const multipart = await rawExchange(base, [multipartHead(host, config.MAX_IMAGE_BYTES + 1024 * 1024)], { giveUpMs: 1_500 });
      expect(multipart.status).toBe(413);
      expect(multipart.answeredAfterMs).toBeLessThan(1_000);
      // Just under the limit, the body is waited for (and here never comes: the idle timer ends it).
      const under = await rawExchange(base, [multipartHead(host, config.MAX_IMAGE_BYTES)], { giveUpMs: 1_500 });
      expect(under.status).toBeUndefined();
      expect(router.calls).toHaveLength(0);
    });

    it('a chunked JSON body (no Content-Length) over MAX_JSON_BODY_BYTES is discarded, not buffered, and answered 413', async () => {
      const { base } = await start({ MAX_JSON_BODY_BYTES: String(64 * 1024) });
      const host = new URL(base).host;
      const chunk = 'a'.repeat(16 * 1024);
      const head = `POST /v1/captions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
      const chunks = [head, `${(1).toString(16)}\r\n"\r\n`, ...Array.from({ length: 8 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`), '0\r\n\r\n'];
      const exchange = await rawExchange(base, chunks, { gapMs: 5, giveUpMs: 2_000 });
      expect(exchange.status).toBe(413);
      expect(exchange.text).toMatch(/"code":"payload_too_large"/);
    });

    it('JSON nested deeper than 32 levels is refused before parsing (400 invalid_json); strings with brackets are fine', async () => {
      const { base } = await start();
      const deep = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"params":${'['.repeat(100_000)}${']'.repeat(100_000)}}` });
      expect(deep.status).toBe(400);
      expect(((await deep.json()) as { error: unknown }).error).toMatchObject({ code: 'invalid_json', message: expect.stringMatching(/deeper than 32/) });
      const png = (await images.png()).toString('base64');
      const bracketsInStrings = await fetch(`${base}/v1/captions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: png, params: { stopStrings: ['['.repeat(40), '{"\\['.repeat(10)] } }),
      });
      expect(bracketsInStrings.status).toBe(200);
    });

    it('the JSON limit is separate from the multipart limit: an image too big for JSON still goes as multipart', async () => {
      const { base } = await start({ MAX_JSON_BODY_BYTES: String(4 * 1024), MAX_IMAGE_BYTES: String(256 * 1024) });
      const png = await images.noisyPng(60, 60);
      expect(png.byteLength).toBeGreaterThan(4 * 1024);
      const viaJson = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: png.toString('base64') }) });
      expect(viaJson.status).toBe(413);
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(png)]), 'scene.png');
      expect((await fetch(`${base}/v1/captions`, { method: 'POST', body: form })).status).toBe(200);
    });
  });

  describe('timeouts and connections', () => {
    it('headers that never finish: 408 and closed after HEADERS_TIMEOUT_MS', async () => {
      const { base } = await start({ HEADERS_TIMEOUT_MS: '500' });
      const exchange = await rawExchange(base, ['POST /v1/captions HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n'], { gapMs: 100 });
      expect(exchange.status).toBe(408);
      expect(exchange.closedAfterMs).toBeGreaterThanOrEqual(450);
      expect(exchange.closedAfterMs).toBeLessThan(2_500);
    });

    it('a stalled upload: 408 body_timeout and closed after BODY_IDLE_TIMEOUT_MS of silence (multipart and JSON)', async () => {
      const { base, router } = await start({ BODY_IDLE_TIMEOUT_MS: '400' });
      const host = new URL(base).host;
      const multipart = await rawExchange(base, [multipartHead(host, 50_000), '--B0UNDARY\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n\x89PNG']);
      expect(multipart.status).toBe(408);
      expect(multipart.text).toMatch(/"code":"body_timeout"/);
      expect(multipart.closedAfterMs).toBeLessThan(2_000);
      const json = await rawExchange(base, [`POST /v1/captions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"image":"`]);
      expect(json.status).toBe(408);
      expect(json.closedAfterMs).toBeLessThan(2_000);
      expect(router.calls).toHaveLength(0);
      // A slow answer is not a stalled upload: the idle timer ends with the body.
      router.behaviour = async (call) => {
        await new Promise((resolve) => setTimeout(resolve, 800));
        return cannedResult(call.requestId);
      };
      const slow = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: (await images.png()).toString('base64') }) });
      expect(slow.status).toBe(200);
    });

    it('a trickling body that never pauses long is still cut at REQUEST_BODY_TIMEOUT_MS', async () => {
      const { base } = await start({ HEADERS_TIMEOUT_MS: '500', REQUEST_BODY_TIMEOUT_MS: '1000', BODY_IDLE_TIMEOUT_MS: '5000' });
      const host = new URL(base).host;
      const exchange = await rawExchange(base, [multipartHead(host, 100_000), ...Array.from({ length: 40 }, () => 'x')], { gapMs: 100, giveUpMs: 6_000 });
      expect(exchange.status).toBe(408);
      expect(exchange.closedAfterMs).toBeLessThan(3_000);
    });

    it('caps concurrent connections at MAX_CONNECTIONS', async () => {
      const { base } = await start({ MAX_CONNECTIONS: '2' });
      const { port, hostname } = new URL(base);
      const sockets: Socket[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          const socket = connect(Number(port), hostname);
          await new Promise((resolve) => socket.once('connect', resolve));
          sockets.push(socket);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
        const third = await rawExchange(base, ['GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n'], { giveUpMs: 3_000 });
        expect(third.status).toBeUndefined();
        expect(third.closedAfterMs).toBeLessThan(1_000);
      } finally {
        for (const socket of sockets) socket.destroy();
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await rawExchange(base, ['GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])).status).toBe(200);
    });
  });

  describe('headers', () => {
    it('security headers from helmet on every response, errors included; no X-Powered-By', async () => {
      const { base } = await start();
      for (const response of [await fetch(`${base}/v2/health/live`), await fetch(`${base}/v1/nothing`)]) {
        expect(response.headers.get('x-content-type-options')).toBe('nosniff');
        expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
        expect(response.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
        expect(response.headers.get('content-security-policy')).not.toMatch(/upgrade-insecure-requests/);
        expect(response.headers.get('strict-transport-security')).toMatch(/max-age=/);
        expect(response.headers.get('x-powered-by')).toBeNull();
      }
    });

    it('CORS is off by default: no Access-Control-* headers for any origin', async () => {
      const { base } = await start();
      const preflight = await fetch(`${base}/v1/captions`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } });
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
      const simple = await fetch(`${base}/v2/health/live`, { headers: { Origin: 'https://evil.example' } });
      expect(simple.headers.get('access-control-allow-origin')).toBeNull();
    });

    it('CORS_ORIGINS allows exactly the listed origins and exposes the id headers', async () => {
      const { base } = await start({ CORS_ORIGINS: 'https://app.example, http://localhost:3000' });
      const allowed = await fetch(`${base}/v1/captions`, { method: 'OPTIONS', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' } });
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const simple = await fetch(`${base}/v2/health/live`, { headers: { Origin: 'http://localhost:3000' } });
      expect(simple.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
      expect(simple.headers.get('access-control-expose-headers')).toMatch(/X-Request-Id.*X-Correlation-Id.*Retry-After/);
      const other = await fetch(`${base}/v2/health/live`, { headers: { Origin: 'https://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    });
  });

  describe('configuration', () => {
    it('defaults: metrics on loopback, 1 MiB JSON, 10 s headers, 10 s body idle, 60 s request, 1024 connections, CORS off, the experts’ params limits', () => {
      expect(loadGatewayConfig({})).toMatchObject({
        METRICS_HOST: '127.0.0.1',
        MAX_JSON_BODY_BYTES: 1024 * 1024,
        HEADERS_TIMEOUT_MS: 10_000,
        BODY_IDLE_TIMEOUT_MS: 10_000,
        REQUEST_BODY_TIMEOUT_MS: 60_000,
        MAX_CONNECTIONS: 1024,
        CORS_ORIGINS: [],
        MAX_NEW_TOKENS: 512,
        MAX_BEAMS: 8,
        MAX_STOP_STRINGS: 16,
        MAX_STOP_STRINGS_CHARS: 1024,
      });
      expect(loadGatewayConfig({ METRICS_HOST: '0.0.0.0', CORS_ORIGINS: 'off' })).toMatchObject({ METRICS_HOST: '0.0.0.0', CORS_ORIGINS: [] });
    });

    it('refuses a bad origin list and params limits above the experts’ own', () => {
      expect(() => loadGatewayConfig({ CORS_ORIGINS: 'app.example' })).toThrow(ConfigError);
      expect(() => loadGatewayConfig({ MAX_NEW_TOKENS: '513' })).toThrow(/MAX_NEW_TOKENS/);
      expect(() => loadGatewayConfig({ MAX_BEAMS: '9' })).toThrow(/MAX_BEAMS/);
      expect(() => loadGatewayConfig({ HEADERS_TIMEOUT_MS: '20000', REQUEST_BODY_TIMEOUT_MS: '10000' })).toThrow(/HEADERS_TIMEOUT_MS=20000: must not exceed/);
    });
  });
});
