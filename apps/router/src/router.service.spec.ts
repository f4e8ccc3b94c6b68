import { describe, expect, it } from 'vitest';
import { formatExpertJobFailure, loadPackManifest, type AggregateJobData, type ExpertJobData, type ExpertOutputJson, type InferenceResultJson } from '@rsmoe/contracts';
import { InstructionRouter } from '@rsmoe/routing';
import { previousExpertJobDataSchema } from '../../../libs/contracts/test-support/previous-contracts';
import { CompletionTimeoutError } from './router-inbox.adapter';
import { RouterRequestError, RouterService, type ExpertReport, type RouterServiceDeps } from './router.service';

const manifest = loadPackManifest(`${__dirname}/../../../models/fixtures/tiny-pack`);
const image = { sha256: 'a'.repeat(64), byteLength: 10, mediaType: 'image/png' };
const images = [image];
const second = { sha256: 'b'.repeat(64), byteLength: 20, mediaType: 'image/jpeg' };

function harness(overrides: Partial<RouterServiceDeps> = {}) {
  const dispatched: { children: readonly ExpertJobData[] }[] = [];
  // The deadline job's data: what fusing needs (armed at dispatch here, the grace period being long).
  const armed: AggregateJobData[] = [];
  // What each cancelled request withdrew.
  const withdrawn: { requestId: string; expertIds: string[] }[] = [];
  let resolveResult: (result: InferenceResultJson) => void = () => undefined;
  const deps: RouterServiceDeps = {
    manifest,
    router: new InstructionRouter(manifest),
    dispatcher: {
      dispatch: async (children) => void dispatched.push({ children }),
      armDeadline: async (parent) => void armed.push(parent),
      withdraw: async (requestId, expertIds) => {
        withdrawn.push({ requestId, expertIds: [...expertIds] });
        return 0;
      },
    },
    completions: {
      channel: 'rsmoe:inbox:router-1',
      listen: () => ({ result: new Promise<InferenceResultJson>((resolve) => (resolveResult = resolve)), cancel: () => undefined }),
    },
    images: { has: async () => true, get: async () => ({ bytes: new Uint8Array([1, 2, 3]) }) },
    results: { get: async () => undefined, store: async () => true },
    maxImages: 4,
    deadlines: { defaultMs: 10_000, maxMs: 60_000, reserveFraction: 0.1, reserveMinMs: 50, reserveMaxMs: 1_000, deadlineJobGraceMs: 60_000 },
    now: () => 1_000_000,
    ...overrides,
  };
  return { service: new RouterService(deps), dispatched, armed, withdrawn, complete: (result: InferenceResultJson) => resolveResult(result) };
}

describe('RouterService', () => {
  it('dispatches one job per routed expert with its prompt and a deadline that leaves time to fuse', async () => {
    const { service, dispatched, armed, complete } = harness();
    const pending = service.infer({ requestId: 'r1', task: 'vqa', images, question: 'how many cars are there ?', params: { maxNewTokens: 5 }, deadlineUnixMs: 1_004_000 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(dispatched).toHaveLength(1);
    const { children } = dispatched[0];
    const [parent] = armed;
    expect(children.map((child) => child.expertId)).toEqual(['object']);
    expect(children[0].prompt).toBe('the objects in the image . answer the question : how many cars are there ?');
    // request params win over the pack's expert settings
    expect(children[0].generation).toMatchObject({ maxNewTokens: 5, numBeams: 1 });
    // 4 s budget, 10 % reserved for fusing: experts are waited for until 3.6 s; the client's budget is named apart
    expect(children[0]).toMatchObject({ deadlineUnixMs: 1_004_000, fuseAtUnixMs: 1_003_600 });
    expect(parent).toMatchObject({ requestId: 'r1', questionType: 'count', deadlineUnixMs: 1_004_000, fuseAtUnixMs: 1_003_600, fusionStrategy: 'priority' });
    expect(parent).not.toHaveProperty('unavailableExperts');
    // replies come back to this router's inbox
    expect(parent.replyTo).toBe('rsmoe:inbox:router-1');
    expect(children[0].replyTo).toBe('rsmoe:inbox:router-1');
    complete({ requestId: 'r1', experts: [] } as unknown as InferenceResultJson);
    expect((await pending).requestId).toBe('r1');
  });

  it('arms the deadline job only for a request still open after the grace period', async () => {
    const grace = { defaultMs: 10_000, maxMs: 60_000, reserveFraction: 0.1, reserveMinMs: 50, reserveMaxMs: 1_000, deadlineJobGraceMs: 20 };
    const quick = harness({ deadlines: grace });
    const answered = quick.service.infer({ requestId: 'q1', task: 'caption', images, params: {} });
    await new Promise((resolve) => setImmediate(resolve));
    quick.complete({ requestId: 'q1', experts: [] } as unknown as InferenceResultJson);
    await answered;
    const slow = harness({ deadlines: grace });
    const open = slow.service.infer({ requestId: 's1', task: 'caption', images, params: {} });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(quick.armed).toEqual([]);
    expect(slow.armed.map((parent) => parent.requestId)).toEqual(['s1']);
    slow.complete({ requestId: 's1', experts: [] } as unknown as InferenceResultJson);
    await open;
  });

  it('arms the deadline job at dispatch when the experts must finish within the grace period', async () => {
    const { service, armed, complete } = harness({
      deadlines: { defaultMs: 10_000, maxMs: 60_000, reserveFraction: 0.1, reserveMinMs: 50, reserveMaxMs: 1_000, deadlineJobGraceMs: 5_000 },
    });
    // 4 s budget: experts are waited for until 3.6 s, within the 5 s grace.
    const pending = service.infer({ requestId: 'b1', task: 'caption', images, params: {}, deadlineUnixMs: 1_004_000 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(armed.map((parent) => parent.requestId)).toEqual(['b1']);
    complete({ requestId: 'b1', experts: [] } as unknown as InferenceResultJson);
    await pending;
  });

  it('gives segmentation and changes their own default and longest budgets, and a change exactly two images', async () => {
    const deadlines = {
      defaultMs: 10_000,
      maxMs: 60_000,
      reserveFraction: 0.1,
      reserveMinMs: 50,
      reserveMaxMs: 1_000,
      // Longer than every budget here: each request arms its deadline job at dispatch, where we see it.
      deadlineJobGraceMs: 3_600_000,
      longTask: { defaultMs: 300_000, maxMs: 1_800_000 },
    };
    const uni = loadPackManifest(`${__dirname}/../../../models/fixtures/tiny-unipack`);
    const { service, armed } = harness({ manifest: uni, router: new InstructionRouter(uni), deadlines });
    void service.infer({ requestId: 'long1', task: 'segmentation', images, params: {}, query: 'water' }).catch(() => undefined);
    void service.infer({ requestId: 'long2', task: 'segmentation', images, params: {}, query: 'water', deadlineUnixMs: 1_000_000 + 3_600_000 }).catch(() => undefined);
    void service.infer({ requestId: 'short1', task: 'classification', images, params: {}, deadlineUnixMs: 1_000_000 + 3_600_000 }).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(armed.map((parent) => [parent.requestId, parent.deadlineUnixMs - 1_000_000])).toEqual([
      ['long1', 300_000],
      ['long2', 1_800_000],
      ['short1', 60_000],
    ]);
    // A classification job carries the pack's labels for the expert to score.
    const classification = harness({ manifest: uni, router: new InstructionRouter(uni), deadlines });
    void classification.service.infer({ requestId: 'k1', task: 'classification', images, params: {} }).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(classification.dispatched[0].children[0]).toMatchObject({ expertId: 'image', candidates: ['farmland', 'forest', 'airport'] });
    await expect(service.infer({ requestId: 'c1', task: 'change', images, params: {} })).rejects.toMatchObject({
      kind: 'invalid_argument',
      message: expect.stringContaining('exactly two images'),
    });
  });

  it('rejects bad requests before dispatching anything', async () => {
    const { service, dispatched } = harness({ images: { has: async () => false, get: async () => undefined } });
    const kinds = async (request: Parameters<RouterService['infer']>[0]) => service.infer(request).catch((error: RouterRequestError) => error.kind);
    expect(await kinds({ requestId: 'bad id!', task: 'caption', images, params: {} })).toBe('invalid_argument');
    expect(await kinds({ requestId: 'r2', task: 'caption', images: [{ ...image, sha256: 'xyz' }], params: {} })).toBe('invalid_argument');
    expect(await kinds({ requestId: 'r3', task: 'caption', images, params: {} })).toBe('not_found');
    expect(await kinds({ requestId: 'r4', task: 'caption', images, params: {}, deadlineUnixMs: 999_000 })).toBe('deadline_exceeded');
    expect(dispatched).toHaveLength(0);
  });

  it('sends every image reference, in prompt order, to every routed expert', async () => {
    const { service, dispatched, complete } = harness();
    const pending = service.infer({ requestId: 'm1', task: 'caption', images: [image, second], params: {} });
    await new Promise((resolve) => setImmediate(resolve));
    expect(dispatched[0].children.map((child) => child.images)).toEqual([
      [image, second],
      [image, second],
      [image, second],
    ]);
    complete({ requestId: 'm1', experts: [] } as unknown as InferenceResultJson);
    await pending;
  });

  it('rolling update: a one-image job is accepted by an expert of the previous release; a several-image job is not offered as one image', async () => {
    for (const [requestImages, acceptedByPrevious] of [
      [[image], true],
      [[image, second], false],
    ] as const) {
      const { service, dispatched, complete } = harness();
      const pending = service.infer({ requestId: 'r1', task: 'caption', images: [...requestImages], params: {} });
      await new Promise((resolve) => setImmediate(resolve));
      for (const child of dispatched[0].children) {
        // What that expert reads is its single `image`; several images it refuses (a degraded answer) rather
        // than describing the first alone.
        const read = previousExpertJobDataSchema.safeParse(child);
        expect(read.success).toBe(acceptedByPrevious);
        if (read.success) expect(read.data).toMatchObject({ image, requestId: 'r1' });
      }
      complete({ requestId: 'r1', experts: [] } as unknown as InferenceResultJson);
      await pending.catch(() => undefined);
    }
  });

  it('refuses no image, more than MAX_IMAGES_PER_REQUEST, a bad reference, and names images missing from the blob store', async () => {
    const stored = new Set([image.sha256]);
    const { service, dispatched } = harness({ maxImages: 2, images: { has: async (sha) => stored.has(sha), get: async () => undefined } });
    const failure = async (request: Parameters<RouterService['infer']>[0]) => service.infer(request).catch((error: RouterRequestError) => error);
    expect(await failure({ requestId: 'n1', task: 'caption', images: [], params: {} })).toMatchObject({ kind: 'invalid_argument', message: /at least one image/ });
    expect(await failure({ requestId: 'n2', task: 'caption', images: [image, image, image], params: {} })).toMatchObject({
      kind: 'invalid_argument',
      message: 'images: 3 images; at most 2 per request',
    });
    expect(await failure({ requestId: 'n3', task: 'caption', images: [image, { ...second, sha256: 'B' }], params: {} })).toMatchObject({
      kind: 'invalid_argument',
      message: 'images[1].sha256: must be 64 lower-case hex characters',
    });
    expect(await failure({ requestId: 'n4', task: 'caption', images: [image, second], params: {} })).toMatchObject({
      kind: 'not_found',
      message: `image ${second.sha256} is not in the blob store (expired or never stored)`,
    });
    expect(dispatched).toHaveLength(0);
  });

  it('rejects an empty question', async () => {
    const { service } = harness();
    await expect(service.infer({ requestId: 'r5', task: 'vqa', images, question: '  ', params: {} })).rejects.toMatchObject({ kind: 'invalid_argument' });
  });

  it('returns a stored result for a repeated request id without dispatching again', async () => {
    const stored = { requestId: 'r6', caption: 'A farmland.' } as InferenceResultJson;
    const { service, dispatched } = harness({ results: { get: async () => stored, store: async () => true } });
    expect(await service.infer({ requestId: 'r6', task: 'caption', images, params: {} })).toBe(stored);
    expect(dispatched).toHaveLength(0);
  });

  it('turns a result where every expert that ran refused the image (errorCode invalid_image) into invalid_argument', async () => {
    const { service, complete } = harness();
    const pending = service.infer({ requestId: 'r8', task: 'caption', images, params: {} });
    await new Promise((resolve) => setImmediate(resolve));
    const failed = { status: 'failed', errorCode: 'invalid_image', error: 'image_undecodable: could not decode the PNG image' };
    const away = { status: 'skipped', errorCode: 'expert_unavailable', error: 'no live worker' };
    complete({ requestId: 'r8', experts: [failed, away, failed] } as unknown as InferenceResultJson);
    await expect(pending).rejects.toMatchObject({ kind: 'invalid_argument', message: expect.stringMatching(/image_undecodable/) });
  });

  it('decides on the error code, never on the error text', async () => {
    const { service, complete } = harness();
    const pending = service.infer({ requestId: 'r8b', task: 'caption', images, params: {} });
    await new Promise((resolve) => setImmediate(resolve));
    // Text that looks like an image error but a code that says otherwise: a degraded answer, not a 4xx.
    const failed = { status: 'failed', errorCode: 'internal', error: 'image_undecodable: out of memory' };
    complete({ requestId: 'r8b', experts: [failed, failed, failed] } as unknown as InferenceResultJson);
    await expect(pending).resolves.toMatchObject({ requestId: 'r8b' });
    const missing = harness();
    const gone = missing.service.infer({ requestId: 'r8c', task: 'caption', images, params: {} });
    await new Promise((resolve) => setImmediate(resolve));
    const expired = { status: 'failed', errorCode: 'image_missing', error: 'image aaa is not in the blob store' };
    missing.complete({ requestId: 'r8c', experts: [expired, expired, expired] } as unknown as InferenceResultJson);
    await expect(gone).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('carries the correlation id and the traceparent in every job, and refuses a malformed correlation id', async () => {
    const { service, dispatched, armed, complete } = harness();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const pending = service.infer({ requestId: 'c1', task: 'caption', images, params: {}, correlationId: 'client/x1', traceparent });
    await new Promise((resolve) => setImmediate(resolve));
    expect(armed[0]).toMatchObject({ correlationId: 'client/x1', traceparent });
    for (const child of dispatched[0].children) expect(child).toMatchObject({ correlationId: 'client/x1', traceparent });
    complete({ requestId: 'c1', experts: [] } as unknown as InferenceResultJson);
    await pending;
    await expect(service.infer({ requestId: 'c2', task: 'caption', images, params: {}, correlationId: 'has space' })).rejects.toMatchObject({ kind: 'invalid_argument' });
    expect(dispatched).toHaveLength(1);
  });

  describe('capacity: dead experts and admission', () => {
    const capacity = (decision: ReturnType<NonNullable<RouterServiceDeps['capacity']>['admit']>, seen: { ids: readonly string[]; remainingMs: number }[] = []) => ({
      admit: (ids: readonly string[], request: { remainingMs: number }) => {
        seen.push({ ids, remainingMs: request.remainingMs });
        return decision;
      },
    });

    it('routes around an expert with no live worker: no job for it, listed as unavailable, the rest dispatched', async () => {
      const seen: { ids: readonly string[]; remainingMs: number }[] = [];
      const { service, dispatched, armed, complete } = harness({ capacity: capacity({ kind: 'admit', live: ['theme', 'relation'], unavailable: ['object'] }, seen) });
      const pending = service.infer({ requestId: 'd1', task: 'caption', images, params: {}, deadlineUnixMs: 1_004_000 });
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toEqual([{ ids: ['theme', 'object', 'relation'], remainingMs: 3_600 }]);
      expect(dispatched[0].children.map((child) => child.expertId)).toEqual(['theme', 'relation']);
      expect(armed[0].routed.map((routed) => routed.expertId)).toEqual(['theme', 'object', 'relation']);
      expect(armed[0].unavailableExperts).toEqual(['object']);
      complete({ requestId: 'd1', experts: [] } as unknown as InferenceResultJson);
      await pending;
    });

    it('releases an admission once its request ends, answered or failed (a bulk request counts while in flight)', async () => {
      let released = 0;
      const admitted = { kind: 'admit' as const, live: ['theme', 'object', 'relation'], unavailable: [], release: () => void released++ };
      const { service, complete } = harness({ capacity: capacity(admitted) });
      const pending = service.infer({ requestId: 'r1', task: 'caption', images, params: {}, priority: 'bulk' });
      await new Promise((resolve) => setImmediate(resolve));
      expect(released).toBe(0);
      complete({ requestId: 'r1', experts: [] } as unknown as InferenceResultJson);
      await pending;
      expect(released).toBe(1);
      const failing = harness({ capacity: capacity(admitted), dispatcher: { dispatch: async () => Promise.reject(new Error('redis away')) } as never });
      await expect(failing.service.infer({ requestId: 'r2', task: 'caption', images, params: {}, priority: 'bulk' })).rejects.toThrow('redis away');
      expect(released).toBe(2);
    });

    it('answers UNAVAILABLE at once, naming the experts down, when none is alive', async () => {
      const { service, dispatched } = harness({ capacity: capacity({ kind: 'unavailable', down: ['theme', 'object', 'relation'] }) });
      await expect(service.infer({ requestId: 'd2', task: 'caption', images, params: {} })).rejects.toMatchObject({
        kind: 'unavailable',
        message: expect.stringMatching(/theme, object, relation.*expert\.theme/),
      });
      expect(dispatched).toHaveLength(0);
    });

    it('refuses an overloaded expert before dispatching, with the retry delay', async () => {
      const { service, dispatched } = harness({ capacity: capacity({ kind: 'overloaded', expertId: 'object', reason: 'queue_full', retryAfterMs: 2_500, message: 'expert object has 64 interactive jobs waiting (limit 64)' }) });
      await expect(service.infer({ requestId: 'd3', task: 'caption', images, params: {} })).rejects.toMatchObject({
        kind: 'resource_exhausted',
        retryAfterMs: 2_500,
        message: expect.stringContaining('64 interactive jobs'),
      });
      expect(dispatched).toHaveLength(0);
    });

    it('fuses a degraded answer as soon as the live experts answered, without waiting for the deadline', async () => {
      const stored: InferenceResultJson[] = [];
      let report: (report: ExpertReport) => void = () => undefined;
      const { service } = harness({
        capacity: capacity({ kind: 'admit', live: ['theme', 'relation'], unavailable: ['object'] }),
        completions: {
          channel: 'rsmoe:inbox:router-1',
          listen: (_id, _timeout, onReport) => {
            report = onReport!;
            return { result: new Promise<InferenceResultJson>(() => undefined), cancel: () => undefined };
          },
        },
        results: { get: async () => undefined, store: async (result) => (stored.push(result), true) },
      });
      const pending = service.infer({ requestId: 'd4', task: 'caption', images, params: {}, correlationId: 'x1' });
      await new Promise((resolve) => setImmediate(resolve));
      const timings = { queueMs: 1, preprocessMs: 0, visionEncodeMs: 0, prefillMs: 1, decodeMs: 1, timeToFirstTokenMs: 1, computeMs: 2 };
      for (const [expertId, text] of [['theme', 'a farmland .'], ['relation', 'a road is next to a field .']]) {
        report({ kind: 'partial', output: { expertId, prompt: 'p', text, status: 'ok', promptTokens: 1, generatedTokens: 2, model: 'm', featuresCached: false, timings } });
      }
      const result = await pending;
      expect(result).toMatchObject({ requestId: 'd4', correlationId: 'x1', degraded: true, missingExperts: ['object'] });
      expect(result.experts[1]).toMatchObject({ expertId: 'object', status: 'skipped', errorCode: 'expert_unavailable' });
      expect(stored).toEqual([result]);
    });
  });

  it('with a router model: classifies the stored image, fills {scene} and routes by the model question type', async () => {
    const seen: unknown[] = [];
    const router = new InstructionRouter(manifest, {
      model: {
        predict: async (input) => {
          seen.push(input);
          return { sceneClass: 'harbour', questionType: 'comparison' };
        },
      },
    });
    const { service, dispatched, armed, complete } = harness({ router });
    const pending = service.infer({ requestId: 'r9', task: 'vqa', images, question: 'how many cars are there ?', params: {} });
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([{ task: 'vqa', question: 'how many cars are there ?', image: new Uint8Array([1, 2, 3]) }]);
    expect(dispatched[0].children.map((child) => child.expertId)).toEqual(['relation']);
    expect(armed[0]).toMatchObject({ questionType: 'comparison' });
    complete({ requestId: 'r9', experts: [] } as unknown as InferenceResultJson);
    await pending;
  });

  it('with a router model and several images: no scene hint, the question type still from the model', async () => {
    const seen: unknown[] = [];
    const router = new InstructionRouter(manifest, {
      model: {
        predict: async (input) => {
          seen.push(input);
          return { questionType: 'comparison' };
        },
      },
    });
    const fetched: string[] = [];
    const { service, dispatched, complete } = harness({
      router,
      images: { has: async () => true, get: async (sha) => (fetched.push(sha), { bytes: new Uint8Array([1]) }) },
    });
    const pending = service.infer({ requestId: 'r10', task: 'vqa', images: [image, second], question: 'are there more cars than trees ?', params: {} });
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([{ task: 'vqa', question: 'are there more cars than trees ?', image: undefined }]);
    expect(fetched).toEqual([]);
    expect(dispatched[0].children.map((child) => [child.expertId, child.images.length])).toEqual([['relation', 2]]);
    complete({ requestId: 'r10', experts: [] } as unknown as InferenceResultJson);
    await pending;
  });

  describe('fusing in the router', () => {
    const ok = (expertId: string, text: string): ExpertOutputJson => ({
      expertId,
      prompt: 'p',
      text,
      status: 'ok',
      promptTokens: 1,
      generatedTokens: 2,
      model: 'm',
      featuresCached: false,
      timings: { queueMs: 1, preprocessMs: 0, visionEncodeMs: 0, prefillMs: 1, decodeMs: 1, timeToFirstTokenMs: 1, computeMs: 2 },
    });

    function fuseHarness(storeWins: boolean) {
      const stored: InferenceResultJson[] = [];
      const fused: InferenceResultJson[] = [];
      let report: (report: ExpertReport) => void = () => undefined;
      let cancelled = 0;
      let resolveListener: (result: InferenceResultJson) => void = () => undefined;
      const { service } = harness({
        completions: {
          channel: 'rsmoe:inbox:router-1',
          listen: (_id, _timeout, onReport) => {
            report = onReport!;
            return { result: new Promise<InferenceResultJson>((resolve) => (resolveListener = resolve)), cancel: () => void (cancelled += 1) };
          },
        },
        results: { get: async () => undefined, store: async (result) => (stored.push(result), storeWins) },
        onFused: (result) => void fused.push(result),
      });
      return {
        service,
        stored,
        fused,
        send: (output: ExpertOutputJson) => report({ kind: 'partial', output }),
        fail: (expertId: string, reason: string) => report({ kind: 'failure', expertId, reason }),
        cancelled: () => cancelled,
        resolveListener: (r: InferenceResultJson) => resolveListener(r),
      };
    }

    it('answers with its own fused result once every routed expert sent an ok partial', async () => {
      const h = fuseHarness(true);
      const pending = h.service.infer({ requestId: 'f1', task: 'caption', images, params: {} });
      await new Promise((resolve) => setImmediate(resolve));
      h.send(ok('theme', 'a farmland .'));
      h.send(ok('object', 'there are 3 fields .'));
      expect(h.stored).toHaveLength(0);
      h.send(ok('relation', 'a road is next to a field .'));
      const result = await pending;
      expect(result).toMatchObject({ requestId: 'f1', degraded: false, fusionStrategy: 'ordered-dedup', caption: expect.stringContaining('farmland') });
      expect(result.experts.map((e) => e.expertId)).toEqual(['theme', 'object', 'relation']);
      expect(h.stored).toEqual([result]);
      expect(h.fused).toEqual([result]);
      expect(h.cancelled()).toBe(1);
    });

    it('fuses a degraded answer at once when an expert timed out or its job failed for good, with the failure code', async () => {
      const h = fuseHarness(true);
      const pending = h.service.infer({ requestId: 'f4', task: 'caption', images, params: {} });
      await new Promise((resolve) => setImmediate(resolve));
      h.send(ok('theme', 'a farmland .'));
      h.send({ ...ok('object', ''), status: 'timed_out', errorCode: 'deadline_exceeded', error: 'stopped at the fuse point' });
      h.fail('relation', formatExpertJobFailure({ errorCode: 'internal', message: 'session run failed' }));
      const result = await pending;
      expect(result).toMatchObject({ requestId: 'f4', degraded: true, missingExperts: ['object', 'relation'] });
      expect(result.experts.map((e) => [e.expertId, e.status, e.errorCode])).toEqual([
        ['theme', 'ok', undefined],
        ['object', 'timed_out', 'deadline_exceeded'],
        ['relation', 'failed', 'internal'],
      ]);
      expect(h.stored).toEqual([result]);
    });

    it('leaves the answer to the aggregator when the aggregator stored first', async () => {
      const h = fuseHarness(false);
      const pending = h.service.infer({ requestId: 'f2', task: 'vqa', images, question: 'how many cars are there ?', params: {} });
      await new Promise((resolve) => setImmediate(resolve));
      h.send(ok('object', '3'));
      await new Promise((resolve) => setImmediate(resolve));
      const fromAggregator = { requestId: 'f2', answer: '3', experts: [] } as unknown as InferenceResultJson;
      h.resolveListener(fromAggregator);
      expect(await pending).toBe(fromAggregator);
      expect(h.stored).toHaveLength(1);
      expect(h.fused).toHaveLength(0);
    });

    it('waits for an expert that has not reported, and ignores reports of experts it did not dispatch', async () => {
      const h = fuseHarness(true);
      const pending = h.service.infer({ requestId: 'f3', task: 'vqa', images, question: 'how many cars are there ?', params: {} });
      await new Promise((resolve) => setImmediate(resolve));
      h.send(ok('theme', 'rural'));
      h.fail('relation', 'boom');
      await new Promise((resolve) => setImmediate(resolve));
      expect(h.stored).toHaveLength(0);
      h.resolveListener({ requestId: 'f3', experts: [] } as unknown as InferenceResultJson);
      expect((await pending).requestId).toBe('f3');
    });
  });

  it("stops waiting when the caller's signal fires: cancelled, the listener released; nothing dispatched when it fired first", async () => {
    let cancels = 0;
    const { service, dispatched, withdrawn } = harness({
      completions: { channel: 'rsmoe:inbox:router-1', listen: () => ({ result: new Promise<InferenceResultJson>(() => undefined), cancel: () => void (cancels += 1) }) },
    });
    const controller = new AbortController();
    const pending = service.infer({ requestId: 'x1', task: 'caption', images, params: {} }, undefined, controller.signal);
    await new Promise((resolve) => setImmediate(resolve));
    expect(dispatched).toHaveLength(1);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ kind: 'cancelled' });
    expect(cancels).toBeGreaterThan(0);
    // Withdrawn before the promise rejects: every dispatched job (and the deadline job) is asked to go.
    expect(withdrawn).toContainEqual({ requestId: 'x1', expertIds: dispatched[0].children.map((child) => child.expertId) });
    await expect(service.infer({ requestId: 'x2', task: 'caption', images, params: {} }, undefined, AbortSignal.abort())).rejects.toMatchObject({ kind: 'cancelled' });
    expect(dispatched).toHaveLength(1);
    expect(withdrawn.map((entry) => entry.requestId)).not.toContain('x2');
  });

  it('withdraws a request cancelled while its jobs were being added', async () => {
    const controller = new AbortController();
    let finishDispatch: () => void = () => undefined;
    const withdrawn: { requestId: string; expertIds: string[] }[] = [];
    const { service } = harness({
      completions: { channel: 'rsmoe:inbox:router-1', listen: () => ({ result: new Promise<InferenceResultJson>(() => undefined), cancel: () => undefined }) },
      dispatcher: {
        dispatch: () => new Promise<void>((resolve) => (finishDispatch = resolve)),
        armDeadline: async () => undefined,
        withdraw: async (requestId, expertIds) => (withdrawn.push({ requestId, expertIds: [...expertIds] }), 0),
      },
    });
    const pending = service.infer({ requestId: 'x3', task: 'caption', images, params: {} }, undefined, controller.signal);
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    finishDispatch();
    await expect(pending).rejects.toMatchObject({ kind: 'cancelled' });
    expect(withdrawn).toContainEqual({ requestId: 'x3', expertIds: ['theme', 'object', 'relation'] });
  });

  it('turns a missing completion into deadline_exceeded', async () => {
    const { service } = harness({
      completions: { channel: 'rsmoe:inbox:router-1', listen: () => ({ result: Promise.reject(new CompletionTimeoutError('late')), cancel: () => undefined }) },
    });
    await expect(service.infer({ requestId: 'r7', task: 'caption', images, params: {} })).rejects.toMatchObject({ kind: 'deadline_exceeded' });
  });
});
