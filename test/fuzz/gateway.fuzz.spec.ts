import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  loadHealthPackage,
  loadRouterPackage,
  toProtoResult,
  type ProtoAnswerRequest__Output,
  type ProtoCaptionRequest__Output,
} from '@rsmoe/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANNED_EXPERTS, cannedResult } from '../../apps/gateway/src/testing/gateway-test-kit';
import { generateCases, makeBaseImages, type FetchCase, type FuzzCase, type RawCase } from './fuzz-inputs';
import { PrivateRedis } from '../../apps/cli/src/mesh/private-redis';

const REPO_ROOT = resolve(__dirname, '../..');
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_206);
const CASES = 1_200;
const CONCURRENCY = 8;
/** A case not answered (or closed) within this is a hang. */
const ANSWER_BOUND_MS = 15_000;
/** Every status the gateway documents for these endpoints (README, HTTP API); 431 is Node's own for oversized headers. */
const DOCUMENTED = new Set([200, 400, 404, 408, 413, 415, 422, 429, 431]);

/** What one case got: an HTTP status, a connection closed without an answer, a hang, or a request the client library refused to send. */
type Outcome = { status: number } | { closed: true } | { hung: true } | { unsent: string };

function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : Number.NaN;
}

async function sendFetch(base: string, c: FetchCase): Promise<Outcome> {
  let response: Response;
  try {
    response = await fetch(`${base}${c.path}`, {
      method: c.method,
      headers: c.headers,
      ...(c.body ? { body: new Uint8Array(c.body) } : {}),
      signal: AbortSignal.timeout(ANSWER_BOUND_MS),
    });
  } catch (error) {
    const e = error as Error;
    if (e.name === 'TimeoutError') return { hung: true };
    if (e.message === 'fetch failed') return { closed: true };
    return { unsent: e.message.slice(0, 80) };
  }
  try {
    await response.arrayBuffer();
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') return { hung: true };
  }
  return { status: response.status };
}

function sendRaw(base: string, c: RawCase): Promise<Outcome> {
  const { port, hostname } = new URL(base);
  return new Promise((done) => {
    const socket = connect(Number(port), hostname);
    let text = '';
    let finished = false;
    const finish = (outcome?: Outcome): void => {
      if (finished) return;
      finished = true;
      clearTimeout(bound);
      socket.destroy();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      done(outcome ?? (match ? { status: Number(match[1]) } : { closed: true }));
    };
    const bound = setTimeout(() => finish(text ? undefined : { hung: true }), ANSWER_BOUND_MS);
    socket.on('data', (data) => {
      text += data.toString('latin1');
      // One complete answer is enough (a keep-alive connection stays open after it).
      if (/\r\n\r\n/.test(text) && /^HTTP\/1\.[01] \d{3}/.test(text) && (/content-length: 0\r\n/i.test(text) || /\r\n\r\n[\s\S]*[}\n]$/.test(text))) finish();
    });
    socket.on('close', () => finish());
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      let i = 0;
      const next = (): void => {
        if (i >= c.chunks.length || socket.destroyed) return;
        socket.write(c.chunks[i++]);
        setTimeout(next, c.gapMs);
      };
      next();
    });
  });
}

function label(outcome: Outcome): string {
  if ('status' in outcome) return String(outcome.status);
  if ('closed' in outcome) return 'closed';
  if ('hung' in outcome) return 'hung';
  return 'unsent';
}

/**
 * 1,200 seeded hostile inputs (FUZZ_SEED replays a run) against the real gateway process (main.ts under tsx)
 * on its own private redis-server, with a real grpc-js router stand-in that answers every
 * forwarded request at once. The gateway's own limits are the defaults except a 1 s body idle timeout, so
 * stalled uploads end quickly.
 */
describe('gateway fuzz', () => {
  const keyPrefix = `fuzz-${randomBytes(6).toString('hex')}`;
  let server: grpc.Server;
  let child: ChildProcess;
  let base: string;
  let logs = '';
  let forwarded = 0;
  let redis: PrivateRedis;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    server = new grpc.Server();
    const answer = (call: grpc.ServerUnaryCall<ProtoCaptionRequest__Output | ProtoAnswerRequest__Output, unknown>, callback: grpc.sendUnaryData<unknown>, task: 'caption' | 'vqa') => {
      forwarded++;
      const result = cannedResult(call.request.requestId, task, 'question' in call.request ? call.request.question : undefined);
      callback(null, toProtoResult({ ...result, ...(call.request.correlationId ? { correlationId: call.request.correlationId } : {}) }));
    };
    server.addService(loadRouterPackage().rsmoe.v1.Router.service, {
      Caption: (call: grpc.ServerUnaryCall<ProtoCaptionRequest__Output, unknown>, callback: grpc.sendUnaryData<unknown>) => answer(call, callback, 'caption'),
      Answer: (call: grpc.ServerUnaryCall<ProtoAnswerRequest__Output, unknown>, callback: grpc.sendUnaryData<unknown>) => answer(call, callback, 'vqa'),
      CaptionStream: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
      ListExperts: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, CANNED_EXPERTS),
    });
    server.addService(loadHealthPackage().grpc.health.v1.Health.service, {
      Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, { status: 'SERVING' }),
      Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
    });
    const routerPort = await new Promise<number>((ok, fail) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? fail(error) : ok(port))),
    );
    child = spawn(process.execPath, ['--import', 'tsx', 'apps/gateway/src/main.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        METRICS_PORT: '0',
        ROUTER_URL: `127.0.0.1:${routerPort}`,
        REDIS_URL: redis.url,
        KEY_PREFIX: keyPrefix,
        BLOB_TTL_S: '60',
        BODY_IDLE_TIMEOUT_MS: '1000',
        // The fuzzed inputs are the requests themselves, not their keys (gateway.auth.spec tests keys).
        AUTH_MODE: 'off',
        // info: the "gateway ready" line carries the URL (port 0 picks one); later lines are not kept.
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    base = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no "gateway ready" line within 60 s:\n${logs}`)), 60_000);
      let ready = false;
      const read = (chunk: Buffer): void => {
        const text = chunk.toString();
        // After start-up only errors are kept (a 500 would log one): the access log of 1,200 requests is not.
        if (ready) {
          for (const line of text.split('\n')) if (line.includes('"level":"error"')) logs += `${line}\n`;
          return;
        }
        logs += text;
        const match = /"msg":"gateway ready".*?"url":"([^"]+)"/.exec(logs);
        if (match) {
          ready = true;
          logs = '';
          clearTimeout(timer);
          ok(match[1]);
        }
      };
      child.stdout!.on('data', read);
      child.stderr!.on('data', read);
      child.once('exit', (code) => fail(new Error(`gateway exited with ${code}:\n${logs}`)));
    });
  }, 90_000);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await new Promise<void>((ok) => (server ? server.tryShutdown(() => ok()) : ok()));
    await redis?.stop('SIGKILL');
  });

  it(`${CASES} seeded hostile inputs: no 5xx, no hang, only documented statuses, the process alive`, async () => {
    const started = Date.now();
    const cases = generateCases(SEED, await makeBaseImages(), CASES);
    expect(cases.length).toBeGreaterThanOrEqual(1_000);
    const pid = child.pid!;
    const rssBefore = rssKiB(pid);
    const outcomes: Array<{ c: FuzzCase; outcome: Outcome }> = [];
    let nextCase = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (nextCase < cases.length) {
          const c = cases[nextCase++];
          outcomes.push({ c, outcome: c.kind === 'fetch' ? await sendFetch(base, c) : await sendRaw(base, c) });
        }
      }),
    );
    const rssAfter = rssKiB(pid);

    const byStatus = new Map<string, number>();
    const byCategory = new Map<string, Map<string, number>>();
    for (const { c, outcome } of outcomes) {
      const key = label(outcome);
      byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
      const row = byCategory.get(c.category) ?? new Map<string, number>();
      row.set(key, (row.get(key) ?? 0) + 1);
      byCategory.set(c.category, row);
    }
    const live = await fetch(`${base}/v2/health/live`);
    const show = (counts: Map<string, number>) => [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}:${n}`).join(' ');
    console.log(
      [
        `gateway fuzz: seed ${SEED}, ${outcomes.length} cases in ${((Date.now() - started) / 1000).toFixed(1)} s, ${forwarded} forwarded to the router`,
        `gateway RSS: ${(rssBefore / 1024).toFixed(1)} MiB before, ${(rssAfter / 1024).toFixed(1)} MiB after`,
        `statuses: ${show(byStatus)}`,
        ...[...byCategory].map(([category, counts]) => `  ${category.padEnd(20)} ${show(counts)}`),
      ].join('\n'),
    );

    const failures = outcomes.filter(({ outcome }) => 'hung' in outcome || ('status' in outcome && (outcome.status >= 500 || !DOCUMENTED.has(outcome.status))));
    expect(failures.map(({ c, outcome }) => `${c.category} ${c.kind === 'fetch' ? `${c.method} ${c.path}` : 'raw'} → ${label(outcome)}`)).toEqual([]);
    // A connection closed without an answer is only acceptable where the request itself is broken at the HTTP level.
    const closedElsewhere = outcomes.filter(({ c, outcome }) => 'closed' in outcome && !['raw-http', 'stalled-upload', 'huge-json', 'broken-multipart'].includes(c.category));
    expect(closedElsewhere.map(({ c }) => `${c.category} ${c.kind === 'fetch' ? `${c.method} ${c.path}` : 'raw'}`)).toEqual([]);
    // The valid inputs got through, and the hostile ones did not reach the router.
    expect(byCategory.get('valid')?.get('200')).toBe([...outcomes].filter(({ c }) => c.category === 'valid').length);
    expect(child.exitCode).toBeNull();
    expect(live.status).toBe(200);
    expect(logs).toBe('');
  }, 150_000);
});
