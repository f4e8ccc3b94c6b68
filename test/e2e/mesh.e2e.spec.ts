import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBlobStore } from '@rsmoe/blobstore';
import {
  expertJobId,
  imageRefToProto,
  loadRouterPackage,
  type InferenceResultJson,
  type ProtoInferenceEvent__Output,
} from '@rsmoe/contracts';
import { fuseCaptions } from '@rsmoe/fusion';
import { InstructionRouter } from '@rsmoe/routing';
import { VlmRuntime } from '@rsmoe/runtime';
import { jobCounts, postImage, startMesh, testImage, type RunningMesh } from './mesh-fixture';

/**
 * The whole mesh as real processes (gateway, router, three experts, aggregator) on real Redis: requests
 * travel HTTP → gRPC → BullMQ → onnxruntime → aggregator → pub/sub and back.
 */
describe('the mesh end to end', { timeout: 60_000 }, () => {
  let running: RunningMesh;
  let runtime: VlmRuntime;
  let router: InstructionRouter;

  /** What each expert should say for an image: its prompt, greedy, through the runtime called directly. */
  async function expectedCaptionTexts(image: Buffer): Promise<Map<string, string>> {
    const decision = router.route({ task: 'caption' });
    const imageFeatures = await runtime.encodeImages([image]);
    const results = await runtime.generate(
      decision.experts.map((assignment) => ({
        prompt: assignment.prompt,
        imageFeatures,
        options: running.manifest.experts.find((expert) => expert.id === assignment.expertId)?.generation,
      })),
    );
    return new Map(decision.experts.map((assignment, index) => [assignment.expertId, results[index].text]));
  }

  beforeAll(async () => {
    running = await startMesh();
    router = new InstructionRouter(running.manifest);
    runtime = await VlmRuntime.load(running.manifest.experts[0].modelDir, {
      executionProvider: 'cpu',
      intraOpThreads: 1,
      logger: { info: () => undefined, warn: () => undefined },
    });
  });

  afterAll(async () => {
    await runtime?.release();
    await running?.stop();
  });

  it('captions an image: each expert says exactly its greedy output, fused in order, with timings', async () => {
    const image = await testImage(1);
    const expected = await expectedCaptionTexts(image);
    const { status, body, headers } = await postImage(running.url, '/v1/captions', image, {}, { 'X-Request-Id': 'caption-1' });
    expect(status).toBe(200);
    // The mesh makes its own unguessable id; the client's id comes back as the correlation id.
    const meshId = headers.get('x-request-id')!;
    expect(meshId).toMatch(/^[0-9a-f]{32}$/);
    expect(headers.get('x-correlation-id')).toBe('caption-1');
    expect(body.requestId).toBe(meshId);
    expect(body.correlationId).toBe('caption-1');
    expect(body.task).toBe('caption');
    expect(body.degraded).toBe(false);
    expect(body.experts.map((expert) => expert.expertId)).toEqual(['theme', 'object', 'relation']);
    for (const expert of body.experts) {
      expect(expert.status).toBe('ok');
      expect(expert.text).toBe(expected.get(expert.expertId));
      expect(expert.generatedTokens).toBeGreaterThan(0);
      expect(expert.timings.computeMs).toBeGreaterThan(0);
    }
    const fused = fuseCaptions(
      body.experts.map(({ expertId, text, status: s }) => ({ expertId, text, status: s })),
      { strategy: 'ordered-dedup', order: ['theme', 'object', 'relation'] },
    );
    expect(body.caption).toBe(fused.caption);
    expect(body.caption?.length).toBeGreaterThan(0);
    expect(body.routed.map((routed) => routed.expertId)).toEqual(['theme', 'object', 'relation']);
    expect(body.timings.totalMs).toBeGreaterThan(0);
    expect(body.packName).toBe('tiny-pack');

    const stored = await fetch(`${running.url}/v1/requests/${meshId}`);
    expect(stored.status).toBe(200);
    expect(((await stored.json()) as InferenceResultJson).caption).toBe(body.caption);
    expect((await fetch(`${running.url}/v1/requests/caption-1`)).status).toBe(404);
  });

  it('never crosses requests that share a client id: two images with the same X-Request-Id get their own captions', async () => {
    const images = [await testImage(8), await testImage(9)];
    const expected = await Promise.all(images.map(expectedCaptionTexts));
    const answers = await Promise.all(images.map((image) => postImage(running.url, '/v1/captions', image, {}, { 'X-Request-Id': 'x1' })));
    answers.forEach(({ status, body, headers }, index) => {
      expect(status).toBe(200);
      expect(body.requestId).toBe(headers.get('x-request-id'));
      expect(body.correlationId).toBe('x1');
      for (const expert of body.experts) expect(expert.text).toBe(expected[index].get(expert.expertId));
    });
    expect(answers[0].body.requestId).not.toBe(answers[1].body.requestId);
    const again = await postImage(running.url, '/v1/vqa', images[0], { question: 'how many buildings are there ?' }, { 'X-Request-Id': 'x1' });
    expect(again.status).toBe(200);
    expect(again.body.task).toBe('vqa');
  });

  it('lists the experts of the pack', async () => {
    const response = await fetch(`${running.url}/v1/experts`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { packName: string; experts: { id: string; queue: string; questionTypes: string[] }[] };
    expect(body.packName).toBe('tiny-pack');
    expect(body.experts.map((expert) => [expert.id, expert.queue])).toEqual([
      ['theme', 'expert.theme'],
      ['object', 'expert.object'],
      ['relation', 'expert.relation'],
    ]);
  });

  it('streams each expert partial as it finishes, then the fused result (gRPC CaptionStream)', async () => {
    const image = await testImage(8);
    const expected = await expectedCaptionTexts(image);
    const blobs = new RedisBlobStore(running.redis, { keyPrefix: running.prefix, ttlSeconds: 60, maxBytes: 1_000_000 });
    const ref = await blobs.put(image, 'image/png');
    const client = new (loadRouterPackage().rsmoe.v1.Router)(`127.0.0.1:${running.routerPort}`, grpc.credentials.createInsecure());
    const events: ProtoInferenceEvent__Output[] = [];
    await new Promise<void>((done, fail) => {
      const call = client.CaptionStream({ requestId: 'stream-1', images: [imageRefToProto(ref)], deadlineUnixMs: String(Date.now() + 10_000) });
      call.on('data', (event: ProtoInferenceEvent__Output) => events.push(event));
      call.on('error', fail);
      call.on('end', () => done());
    });
    client.close();
    const partials = events.filter((event) => event.event === 'partial').map((event) => event.partial!);
    expect(partials.map((partial) => partial.expertId).sort()).toEqual(['object', 'relation', 'theme']);
    for (const partial of partials) expect(partial.text).toBe(expected.get(partial.expertId));
    expect(events.at(-1)?.event).toBe('result');
    expect(events.at(-1)?.result?.requestId).toBe('stream-1');
  });

  it('rsmoe caption prints the caption and one line per expert', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rsmoe-cli-'));
    try {
      const file = join(dir, 'scene.png');
      writeFileSync(file, await testImage(9));
      const cli = spawnSync(process.execPath, [resolve(__dirname, '../../bin/rsmoe.cjs'), 'caption', file, '--url', running.url], { encoding: 'utf8', timeout: 30_000 });
      expect(cli.status, cli.stderr).toBe(0);
      expect(cli.stdout).toMatch(/^Caption: \S/);
      for (const expertId of ['theme', 'object', 'relation']) expect(cli.stdout).toMatch(new RegExp(`\\n  ${expertId} +ok `));
      const missing = spawnSync(process.execPath, [resolve(__dirname, '../../bin/rsmoe.cjs'), 'caption', join(dir, 'nope.png'), '--url', running.url], { encoding: 'utf8' });
      expect(missing.status).toBe(2);
      expect(missing.stderr).toMatch(/cannot read image/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rsmoe eval runs the real UCM sample through the mesh and writes its report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rsmoe-eval-'));
    try {
      const datasets = resolve(__dirname, '../../../shared/datasets/ucm-captions-sample');
      const cli = spawnSync(
        process.execPath,
        [
          resolve(__dirname, '../../bin/rsmoe.cjs'),
          'eval',
          '--dataset',
          `karpathy:${datasets}/dataset_ucm_subset.json`,
          '--images',
          `${datasets}/images`,
          '--url',
          running.url,
          '--limit',
          '6',
          '--out',
          out,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(cli.status, cli.stderr).toBe(0);
      const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Record<string, unknown>;
      expect(JSON.stringify(report)).toMatch(/CIDEr/);
      expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/BLEU|Bleu/);
      expect(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n')).toHaveLength(6);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('routes each question type only to the experts of its domain', async () => {
    const image = await testImage(2);
    const cases = [
      { question: 'how many buildings are there ?', type: 'count', experts: ['object'] },
      { question: 'is there a river in the image ?', type: 'presence', experts: ['object'] },
      { question: 'are there more trees than buildings ?', type: 'comparison', experts: ['relation'] },
      { question: 'is it a rural or an urban area ?', type: 'rural_urban', experts: ['theme'] },
      { question: 'what is the area covered by buildings in square meters ?', type: 'area', experts: ['theme'] },
    ];
    for (const [index, testCase] of cases.entries()) {
      const { status, body, headers } = await postImage(running.url, '/v1/vqa', image, { question: testCase.question }, { 'X-Request-Id': `vqa-${index}` });
      const requestId = headers.get('x-request-id')!;
      expect(status).toBe(200);
      expect(body.questionType).toBe(testCase.type);
      expect(body.experts.map((expert) => expert.expertId)).toEqual(testCase.experts);
      expect(typeof body.answer).toBe('string');
      for (const [expertId, queue] of running.queues) {
        const job = await queue.getJob(expertJobId(requestId, expertId));
        expect(Boolean(job), `${testCase.type} → ${expertId}`).toBe(testCase.experts.includes(expertId));
      }
    }
  });

  it('refuses bad input at the gateway with its status and code, and queues nothing', async () => {
    const before = await jobCounts(running.queues);
    const png = await testImage(3);
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1');
    const checks: { status: number; code: string; send: () => Promise<Response> }[] = [
      { status: 415, code: 'unsupported_media_type', send: () => fetchForm('/v1/captions', gif) },
      { status: 400, code: 'missing_image', send: () => fetch(`${running.url}/v1/captions`, { method: 'POST', body: new FormData() }) },
      { status: 415, code: 'unsupported_media_type', send: () => fetchForm('/v1/captions', Buffer.from('not an image at all')) },
      { status: 422, code: 'invalid_image', send: () => fetchForm('/v1/captions', png.subarray(0, 40)) },
      { status: 400, code: 'missing_question', send: () => fetchForm('/v1/vqa', png) },
      { status: 422, code: 'question_too_long', send: () => fetchForm('/v1/vqa', png, { question: 'why '.repeat(400) }) },
    ];
    for (const check of checks) {
      const response = await check.send();
      const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
      expect({ status: response.status, code: body.error.code }).toEqual({ status: check.status, code: check.code });
      expect(body.error.message.length).toBeGreaterThan(0);
      expect(body.error.requestId).toBe(response.headers.get('x-request-id'));
    }
    expect(await jobCounts(running.queues)).toEqual(before);

    function fetchForm(path: string, bytes: Buffer, fields: Record<string, string> = {}): Promise<Response> {
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(bytes)]), 'upload');
      for (const [key, value] of Object.entries(fields)) form.append(key, value);
      return fetch(`${running.url}${path}`, { method: 'POST', body: form });
    }
  });

  it('answers 422 invalid_image when the image header is valid but its pixels cannot be decoded', async () => {
    const png = Buffer.from(await testImage(15));
    const idat = png.indexOf(Buffer.from('IDAT'));
    for (let i = idat + 8; i < idat + 40; i++) png[i] = 0x55;
    const { status, body, headers } = await postImage(running.url, '/v1/captions', png, { timeoutMs: '5000' }, { 'X-Request-Id': 'corrupt-1' });
    expect(status).toBe(422);
    expect(body.error).toMatchObject({ code: 'invalid_image', requestId: headers.get('x-request-id') });
    expect(body.error?.message).toMatch(/image_undecodable/);
  });

  it('encodes an image sent twice only once', async () => {
    const image = await testImage(4);
    const first = await postImage(running.url, '/v1/captions', image);
    const second = await postImage(running.url, '/v1/captions', image);
    const encodings = [...first.body.experts, ...second.body.experts].filter((expert) => !expert.featuresCached);
    expect(encodings).toHaveLength(1);
    expect(second.body.experts.every((expert) => expert.featuresCached)).toBe(true);
  });

  it('answers 50 concurrent requests, each with its own id and its own image', async () => {
    const images = await Promise.all([10, 11, 12, 13, 14].map(testImage));
    const expected = await Promise.all(images.map(expectedCaptionTexts));
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        postImage(running.url, '/v1/captions', images[index % images.length], {}, { 'X-Request-Id': `load-${index}` }),
      ),
    );
    responses.forEach(({ status, body, headers }, index) => {
      expect(status).toBe(200);
      expect(body.requestId).toBe(headers.get('x-request-id'));
      expect(body.correlationId).toBe(`load-${index}`);
      expect(body.degraded).toBe(false);
      for (const expert of body.experts) expect(expert.text).toBe(expected[index % images.length].get(expert.expertId));
    });
  });

  /** Live workers of an expert as the router last polled them (ListExperts), undefined before its first poll. */
  async function liveWorkers(expertId: string): Promise<number | undefined> {
    const client = new (loadRouterPackage().rsmoe.v1.Router)(`127.0.0.1:${running.routerPort}`, grpc.credentials.createInsecure());
    try {
      const response = await new Promise<{ experts: { id: string; liveWorkers?: number }[] }>((resolve, reject) =>
        client.ListExperts({}, (error, value) => (error ? reject(error) : resolve(value as never))),
      );
      return response.experts.find((expert) => expert.id === expertId)?.liveWorkers;
    } finally {
      client.close();
    }
  }

  it('survives a killed expert: once the router sees no live worker it routes around it, degraded at once', async () => {
    await running.mesh.stopService('expert.relation', 'SIGKILL');
    // The router polls the expert queues' workers every second (EXPERT_POLL_INTERVAL_MS).
    await expect.poll(() => liveWorkers('relation'), { timeout: 5_000, interval: 100 }).toBe(0);
    const started = Date.now();
    const { status, body, headers } = await postImage(running.url, '/v1/captions', await testImage(5), { timeoutMs: '4000' }, { 'X-Request-Id': 'killed-1' });
    const killedId = headers.get('x-request-id')!;
    expect(status).toBe(200);
    // Nobody waits for the dead expert: answered well before the fuse point (3.6 s).
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(body.degraded).toBe(true);
    expect(body.missingExperts).toEqual(['relation']);
    expect(body.experts.find((expert) => expert.expertId === 'relation')).toMatchObject({ status: 'skipped', errorCode: 'expert_unavailable' });
    expect(body.caption?.length).toBeGreaterThan(0);
    // No job was queued for it.
    expect(await running.queues.get('relation')!.getJob(expertJobId(killedId, 'relation'))).toBeUndefined();
    await running.mesh.startService('expert.relation');
    await expect.poll(() => liveWorkers('relation'), { timeout: 5_000, interval: 100 }).toBe(1);
  });

  it('answers 408 when nothing can finish the request before its deadline', async () => {
    // A stopped (SIGSTOP) theme expert keeps its connection, so it looks alive and gets its job, but never
    // answers: the router cannot fuse, and without the aggregator nothing else can.
    await running.mesh.stopService('aggregator', 'SIGKILL');
    const themePid = running.mesh.pids['expert.theme'];
    process.kill(themePid, 'SIGSTOP');
    try {
      const started = Date.now();
      const { status, body, headers } = await postImage(running.url, '/v1/captions', await testImage(7), { timeoutMs: '1500' }, { 'X-Request-Id': 'late-1' });
      expect(status).toBe(408);
      expect(body.error).toMatchObject({ code: 'deadline_exceeded', requestId: headers.get('x-request-id') });
      expect(headers.get('x-correlation-id')).toBe('late-1');
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      process.kill(themePid, 'SIGCONT');
    }
    await running.mesh.startService('aggregator');
  });

  it('drains on SIGTERM: the expert exits cleanly and in-flight requests still complete', async () => {
    const pending = postImage(running.url, '/v1/captions', await testImage(6), { timeoutMs: '5000' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await running.mesh.stopService('expert.object', 'SIGTERM')).toBe(0);
    const { status, body } = await pending;
    expect(status).toBe(200);
    expect(body.experts.map((expert) => expert.expertId)).toEqual(['theme', 'object', 'relation']);
    await running.mesh.startService('expert.object');
  });
});
