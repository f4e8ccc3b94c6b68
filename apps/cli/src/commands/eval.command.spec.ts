import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKarpathy, type EvalReport } from '@rsmoe/eval';
import { REPO_ROOT, runCli } from './cli-test-harness';
import { readResults, runEvaluation } from './eval-runner';
import { GatewayClient } from './gateway-client';

const UCM = resolve(REPO_ROOT, '../shared/datasets/ucm-captions-sample');
const UCM_JSON = join(UCM, 'dataset_ucm_subset.json');
const ucm = readKarpathy(JSON.parse(readFileSync(UCM_JSON, 'utf8')), UCM_JSON);
const firstCaption = new Map(ucm.map((s) => [s.image, s.references[0]]));
const FAILING = ucm[1].image;
const OVERLOADED_ONCE = ucm[2].image;
const DEGRADED = ucm[0].image;

/**
 * A stand-in for the gateway (contract in ARCHITECTURE.md): multipart POST /v1/captions and /v1/vqa.
 * Captions echo the image's first reference. FAILING always gets 500; the first request for
 * OVERLOADED_ONCE gets 503 (retried by the client). VQA answers "yes".
 */
class FakeGateway {
  server: Server = createServer((req, res) => void this.handle(req, res));
  requests: string[] = [];
  private overloaded = new Set<string>();

  async start(): Promise<string> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((done) => this.server.close(() => done()));
  }

  private async handle(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('latin1');
    const filename = /name="image"; filename="([^"]+)"/.exec(body)?.[1] ?? '';
    const multipart = (req.headers['content-type'] ?? '').startsWith('multipart/form-data');
    this.requests.push(`${req.url} ${filename}`);
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    const requestId = `req-${this.requests.length}`;
    if (!multipart || filename === '') return send(400, { error: { code: 'bad_request', message: 'image is required', requestId } });
    if (filename === FAILING) return send(500, { error: { code: 'internal', message: 'expert crashed', requestId } });
    if (filename === OVERLOADED_ONCE && !this.overloaded.has(filename)) {
      this.overloaded.add(filename);
      return send(503, { error: { code: 'not_ready', message: 'warming up', requestId } });
    }
    const timings = { totalMs: 12.5 };
    if (req.url === '/v1/vqa') {
      const question = /name="question"\r\n\r\n([^\r]*)/.exec(body)?.[1];
      return send(200, { requestId, task: 'vqa', answer: question ? 'yes' : '', experts: [], degraded: false, timings });
    }
    send(200, { requestId, task: 'caption', caption: firstCaption.get(filename) ?? 'an image', experts: [{ id: 'theme', text: 'x', status: 'ok' }], degraded: filename === DEGRADED, timings });
  }
}

const gateway = new FakeGateway();
let url = '';
beforeAll(async () => {
  url = await gateway.start();
});
afterAll(() => gateway.stop());

describe('rsmoe eval', () => {
  it('runs the UCM sample through the gateway, records failures, writes the reports, and resumes', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rsmoe-eval-'));
    const args = ['eval', '--dataset', `karpathy:${UCM_JSON}`, '--images', join(UCM, 'images'), '--url', url, '--concurrency', '3', '--out', out];
    const first = await runCli(args);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(`${out}/report.json\n`);
    expect(first.stderr).toContain('eval: 25 to run');
    expect(first.stderr).toContain('eval: 24 ok, 1 failed');

    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as EvalReport;
    expect(report).toMatchObject({ task: 'caption', samples: 25, succeeded: 24, failed: 1, degraded: 1 });
    expect(report.failures).toEqual([{ id: ucm[1].id, code: 'internal', message: 'expert crashed' }]);
    // The echoed caption is a reference, so the metrics are high but not perfect (other references differ).
    if (report.task !== 'caption' || !report.metrics) throw new Error('caption report expected');
    expect(report.metrics.Bleu_1).toBeGreaterThan(0.99);
    expect(Object.keys(report.perCategory)).toHaveLength(21);
    expect(report.latency.serverMs).toMatchObject({ count: 24, p50: 12.5, p99: 12.5 });
    expect(report.latency.clientMs.count).toBe(25);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('## Per class (×100)');
    expect(md).toContain('| server timings.totalMs | 24 | 12.5 |');

    const records = await readResults(join(out, 'results.jsonl'));
    expect(records.size).toBe(25);
    expect([...records.values()].filter((r) => r.status === 'failed')).toHaveLength(1);
    // OVERLOADED_ONCE was answered 503 once, then retried successfully.
    expect(gateway.requests.filter((r) => r.endsWith(` ${OVERLOADED_ONCE}`))).toHaveLength(2);

    const before = gateway.requests.length;
    const second = await runCli(args);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('eval: 1 to run, 24 already done (skipped)');
    // The access check (GET /v1/experts), then the one sample still to run.
    expect(gateway.requests.slice(before)).toEqual(['/v1/experts ', `/v1/captions ${FAILING}`]);
    expect(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n')).toHaveLength(26);
  });

  it('reports a bad dataset or option in one line with exit code 2', async () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'rsmoe-bad-')), 'd.json');
    writeFileSync(bad, JSON.stringify({ images: [{ filename: 'a.tif', imgid: 0, sentences: [{ raw: 3 }] }] }));
    const run = await runCli(['eval', '--dataset', `karpathy:${bad}`, '--images', '.', '--url', url]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`eval: ${bad}: images[0].sentences[0].raw: expected a string, got number 3\n`);
    const usage = await runCli(['eval', '--dataset', 'nope:x', '--images', '.']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^eval: nope:x: \(spec\): expected <format>:<path>/);
  });

  it('runs VQA samples in-process and scores them RSVQA-style', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rsmoe-vqa-'));
    const vqa = [
      { id: 'q1', image: '0.tif', question: 'Is there a road?', answers: ['yes'], type: 'presence' },
      { id: 'q2', image: '0.tif', question: 'Is it rural?', answers: ['no'], type: 'rural_urban' },
    ];
    const report = await runEvaluation({
      task: 'vqa',
      datasetLabel: 'rsvqa:fixture',
      captions: [],
      vqa,
      imagesDir: '.',
      outDir: out,
      concurrency: 2,
      gateway: new GatewayClient({ url }),
      readImage: async () => new Uint8Array([1, 2, 3]),
    });
    expect(report.task).toBe('vqa');
    if (report.task !== 'vqa') return;
    expect(report.accuracy).toMatchObject({ overallAccuracy: 0.5, averageAccuracy: 0.5 });
    expect(report.accuracy?.perType.presence.accuracy).toBe(1);
  });

  it('records a network failure as a failed row instead of crashing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rsmoe-down-'));
    const report = await runEvaluation({
      task: 'caption',
      datasetLabel: 'x',
      captions: [{ id: '1', image: '1.tif', references: ['a'] }],
      vqa: [],
      imagesDir: '.',
      outDir: out,
      concurrency: 1,
      gateway: new GatewayClient({ url: 'http://127.0.0.1:9', maxAttempts: 2, backoffMs: 1 }),
      readImage: async () => new Uint8Array([1]),
    });
    expect(report).toMatchObject({ succeeded: 0, failed: 1, metrics: null });
    expect(report.failures[0].code).toBe('network_error');
  });
});
