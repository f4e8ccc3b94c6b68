import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLoadOptions } from './load-options';
import { summariseLoad } from './load-report';
import { runLoad } from './load-runner';

/** A stand-in gateway: every 4th request 429, every 5th degraded, each answered after 20 ms; counts what is in flight. */
describe('runLoad against a local HTTP server', () => {
  let server: Server;
  let url: string;
  let inFlight = 0;
  let maxInFlight = 0;
  let received = 0;
  const paths: string[] = [];
  const bodies: string[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const n = ++received;
      paths.push(request.url ?? '');
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString('latin1'));
        setTimeout(() => {
          inFlight -= 1;
          response.setHeader('content-type', 'application/json');
          if (n % 4 === 0) {
            response.statusCode = 429;
            response.end(JSON.stringify({ error: { code: 'overloaded', message: 'busy', requestId: 'x' } }));
          } else {
            response.end(JSON.stringify({ requestId: 'x', caption: 'a scene', degraded: n % 5 === 0 }));
          }
        }, 20);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const image = { bytes: Uint8Array.of(0x89, 0x50, 0x4e, 0x47), filename: 'x.png', mediaType: 'image/png' };
  const base = { url: '', task: 'caption', concurrency: '3', duration: '1', question: 'is there a road ?', timeoutMs: '5000' };

  it('keeps at most `concurrency` requests in flight and counts every answer by status, code and degraded', async () => {
    received = 0;
    maxInFlight = 0;
    const { samples, elapsedMs } = await runLoad(parseLoadOptions({ ...base, url }), image);
    expect(maxInFlight).toBe(3);
    expect(samples.length).toBe(received);
    expect(samples.length).toBeGreaterThan(6);
    const summary = summariseLoad(samples, elapsedMs);
    expect(summary.byStatus['429']).toBe(Math.floor(received / 4));
    expect(summary.byErrorCode).toEqual({ overloaded: Math.floor(received / 4) });
    expect(summary.degraded).toBe(Array.from({ length: received }, (_, i) => i + 1).filter((n) => n % 5 === 0 && n % 4 !== 0).length);
    expect(paths.every((path) => path === '/v1/captions')).toBe(true);
  });

  it('starts requests at the given rate (open loop) and sends the question for vqa', async () => {
    received = 0;
    paths.length = 0;
    bodies.length = 0;
    const { samples } = await runLoad(parseLoadOptions({ ...base, url, task: 'vqa', rate: '5', concurrency: '8' }), image);
    // Starts due at 0, 200, 400, 600 and 800 ms within the 1 s run.
    expect(samples).toHaveLength(5);
    expect(paths.every((path) => path === '/v1/vqa')).toBe(true);
    expect(bodies[0]).toContain('is there a road ?');
  });

  it('counts a request that gets no answer in time as client_timeout, one with no server as network_error', async () => {
    const hanging = createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    try {
      const port = (hanging.address() as AddressInfo).port;
      const timedOut = await runLoad(parseLoadOptions({ ...base, url: `http://127.0.0.1:${port}`, concurrency: '1', duration: '1', timeoutMs: '300' }), image);
      expect(new Set(timedOut.samples.map((sample) => sample.errorCode))).toEqual(new Set(['client_timeout']));
    } finally {
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
    const refused = await runLoad(parseLoadOptions({ ...base, url: 'http://127.0.0.1:1', concurrency: '1', duration: '1', rate: '2' }), image);
    expect(refused.samples.map((sample) => [sample.status, sample.errorCode])).toEqual([
      [0, 'network_error'],
      [0, 'network_error'],
    ]);
  });
});
