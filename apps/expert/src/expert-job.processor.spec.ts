import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ExpertJobData } from '@rsmoe/contracts';
import type { DecodedImage, FeaturePacking, GenerationRequest, GenerationResult, ImageFeatures } from '@rsmoe/runtime';
import { ExpertJobProcessor, PermanentJobError, type ExpertModel, type FeatureSource } from './expert-job.processor';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const SHA_E = 'e'.repeat(64);
const ref = (sha256: string) => ({ sha256, byteLength: 3, mediaType: 'image/png' });

/** A LLaVA-OneVision-like model: a lone image is packed anyres (3 features), each of several as one crop (2). */
function fakeModel(
  calls: { generate: GenerationRequest[][]; encode: { width: number; imagesInPrompt: number }[] },
  behaviour: FakeBehaviour = {},
): ExpertModel {
  return {
    encoderId: 'enc',
    featurePacking: (imageCount) => (imageCount === 1 ? 'anyres' : 'single-crop'),
    encodeImages: async (images, { imagesInPrompt }) =>
      images.map((image) => {
        const { width } = image as DecodedImage;
        calls.encode.push({ width, imagesInPrompt });
        const packing: FeaturePacking = imagesInPrompt === 1 ? 'anyres' : 'single-crop';
        const tokens = packing === 'anyres' ? 3 : 2;
        return { encoderId: 'enc', packing, tokens, hiddenSize: 2, data: new Float32Array(tokens * 2).fill(width) };
      }),
    generate: async (requests) => {
      calls.generate.push([...requests]);
      await behaviour.gate;
      return requests.map(
        (request): GenerationResult => ({
          text: `said: ${request.prompt}`,
          tokenIds: [5, 6],
          promptTokens: 7,
          generatedTokens: 2,
          finishReason: behaviour.finishReason ?? 'length',
          timings: { preprocessMs: 0, visionEncodeMs: 0, prefillMs: 1, decodeMs: 2, timeToFirstTokenMs: 1, totalMs: 3 },
        }),
      );
    },
  };
}

/** How the fake model behaves: hold every generation until `gate` resolves; report this finish reason. */
interface FakeBehaviour {
  gate?: Promise<void>;
  finishReason?: GenerationResult['finishReason'];
}

function job(overrides: Partial<ExpertJobData> = {}): ExpertJobData {
  return {
    requestId: 'r1',
    task: 'caption',
    expertId: 'theme',
    prompt: 'describe the scene .',
    images: [ref(SHA_A)],
    generation: { maxNewTokens: 4 },
    deadlineUnixMs: 10_000,
    enqueuedAtUnixMs: 900,
    replyTo: 'rsmoe:inbox:router-1',
    ...overrides,
  };
}

/** PNGs whose width tells them apart in the fake model's features. */
const blobs = new Map<string, Uint8Array>();
beforeAll(async () => {
  const png = async (width: number) => new Uint8Array(await sharp({ create: { width, height: 4, channels: 3, background: '#336699' } }).png().toBuffer());
  blobs.set(SHA_A, await png(4));
  blobs.set(SHA_B, await png(6));
  blobs.set(SHA_E, await png(8));
  // A PNG signature followed by garbage: sniffed as PNG, then undecodable.
  blobs.set('c'.repeat(64), Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5));
});

function processor(now: number | (() => number) = 1_000, behaviour: FakeBehaviour = {}) {
  const calls = { generate: [] as GenerationRequest[][], encode: [] as { width: number; imagesInPrompt: number }[] };
  const published: string[] = [];
  const cacheKeys: string[] = [];
  const cache = new Map<string, ImageFeatures>();
  const features: FeatureSource = {
    getOrCompute: async (key, compute) => {
      const id = `${key.imageSha256.slice(0, 1)}:${key.encoderId}:${key.packing}`;
      cacheKeys.push(id);
      const hit = cache.get(id);
      if (hit) return { features: hit, cached: true, preprocessMs: 0, visionEncodeMs: 0 };
      const computed = await compute();
      cache.set(id, computed.features);
      return { ...computed, cached: false };
    },
  };
  const instance = new ExpertJobProcessor({
    expertId: 'theme',
    modelName: 'tiny',
    model: fakeModel(calls, behaviour),
    images: { get: async (sha) => (blobs.has(sha) ? { bytes: blobs.get(sha)!, mediaType: 'image/png' } : undefined) },
    features,
    // Long enough for jobs submitted together to meet even on a busy machine (their images decode first).
    batching: { maxBatchSize: 8, maxWaitMs: 50 },
    publishPartial: async (replyTo, requestId, output) => void published.push(`${replyTo}>${requestId}:${output.text}`),
    now: typeof now === 'number' ? () => now : now,
  });
  return { instance, calls, published, cacheKeys };
}

describe('ExpertJobProcessor', () => {
  it('generates for a job, reports queue time, and publishes the partial', async () => {
    const { instance, published, calls } = processor();
    const output = await instance.process(job());
    expect(output).toMatchObject({ expertId: 'theme', status: 'ok', text: 'said: describe the scene .', generatedTokens: 2, model: 'tiny', featuresCached: false });
    expect(output.timings.queueMs).toBe(100);
    expect(published).toEqual(['rsmoe:inbox:router-1>r1:said: describe the scene .']);
    const [[request]] = calls.generate;
    expect(request.imageFeatures?.map((f) => [f.packing, f.tokens])).toEqual([['anyres', 3]]);
  });

  it('passes every image’s features in prompt order, packed for a several-image prompt, one cache entry per image', async () => {
    const { instance, calls, cacheKeys } = processor();
    const output = await instance.process(job({ images: [ref(SHA_B), ref(SHA_A)] }));
    expect(output.status).toBe('ok');
    const [[request]] = calls.generate;
    // Widths 6 then 4: the order of the job's images.
    expect(request.imageFeatures?.map((f) => [f.packing, f.tokens, f.data[0]])).toEqual([
      ['single-crop', 2, 6],
      ['single-crop', 2, 4],
    ]);
    expect(request.images).toBeUndefined();
    expect(calls.encode).toEqual(expect.arrayContaining([{ width: 6, imagesInPrompt: 2 }, { width: 4, imagesInPrompt: 2 }]));
    expect(cacheKeys).toEqual(['b:enc:single-crop', 'a:enc:single-crop']);
    expect(output.featuresCached).toBe(false);
  });

  it('reports features as cached only when every image came from the cache; a lone image needs its own packing', async () => {
    const { instance, calls } = processor();
    await instance.process(job({ requestId: 'x1', images: [ref(SHA_A), ref(SHA_B)] }));
    // Both images cached for the several-image packing.
    expect((await instance.process(job({ requestId: 'x2', images: [ref(SHA_B), ref(SHA_A)] }))).featuresCached).toBe(true);
    // The same image alone is packed anyres: encoded again, once.
    expect((await instance.process(job({ requestId: 'x3', images: [ref(SHA_A)] }))).featuresCached).toBe(false);
    expect((await instance.process(job({ requestId: 'x4', images: [ref(SHA_A)] }))).featuresCached).toBe(true);
    // Three images pack like two (one crop each): cached, whatever the count.
    expect((await instance.process(job({ requestId: 'x5', images: [ref(SHA_A), ref(SHA_B), ref(SHA_A)] }))).featuresCached).toBe(true);
    // One cached image and one new: not all from the cache.
    expect((await instance.process(job({ requestId: 'x6', images: [ref(SHA_A), ref(SHA_E)] }))).featuresCached).toBe(false);
    // (The two images of a job are encoded concurrently: their order is not fixed.)
    expect(calls.encode.map((entry) => `${entry.width}/${entry.imagesInPrompt}`).sort()).toEqual(['4/1', '4/2', '6/2', '8/2']);
  });

  it('batches jobs that arrive together into one generation call', async () => {
    const { instance, calls } = processor();
    const outputs = await Promise.all([job({ requestId: 'a' }), job({ requestId: 'b' }), job({ requestId: 'c' })].map((j) => instance.process(j)));
    expect(calls.generate.map((batch) => batch.length)).toEqual([3]);
    expect(outputs.map((output) => output.status)).toEqual(['ok', 'ok', 'ok']);
  });

  it('drops a job picked up after its deadline without computing it, answering deadline_exceeded', async () => {
    const { instance, calls, published } = processor(20_000);
    const output = await instance.process(job());
    expect(output).toMatchObject({ status: 'timed_out', errorCode: 'deadline_exceeded', text: '' });
    expect(output.error).toMatch(/after the fuse point/);
    expect(calls.generate).toHaveLength(0);
    expect(calls.encode).toHaveLength(0);
    expect(published).toEqual(['rsmoe:inbox:router-1>r1:']);
  });

  it("takes the fuse point as the job's limit when the payload has one, else the deadline", async () => {
    // Picked up at 2 000: before the client's deadline (10 000), after the fuse point (1 500).
    const { instance, calls } = processor(2_000);
    expect(await instance.process(job({ fuseAtUnixMs: 1_500 }))).toMatchObject({ status: 'timed_out', errorCode: 'deadline_exceeded' });
    expect(calls.generate).toHaveLength(0);
    // Without a fuse point (an older router's payload) the deadline is the limit: computed.
    expect(await instance.process(job())).toMatchObject({ status: 'ok' });
  });

  it('hands the runtime a signal and the fuse point, and answers a generation stopped there as deadline_exceeded', async () => {
    const fuseAt = Date.now() + 60_000;
    const { instance, calls } = processor(Date.now, { finishReason: 'deadline' });
    const output = await instance.process(job({ deadlineUnixMs: fuseAt + 1_000, fuseAtUnixMs: fuseAt }));
    expect(output).toMatchObject({ status: 'timed_out', errorCode: 'deadline_exceeded', text: '', generatedTokens: 2, promptTokens: 7 });
    expect(output.finishReason).toBeUndefined();
    expect(output.error).toMatch(/stopped at the fuse point after 2 generated tokens/);
    const [[request]] = calls.generate;
    expect(request.deadlineUnixMs).toBe(fuseAt);
    expect(request.signal).toBeInstanceOf(AbortSignal);
    expect(request.signal?.aborted).toBe(false);
  });

  it('drops a job whose fuse point passes while it waits for a batch: answered, never computed', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { instance, calls } = processor(Date.now, { gate });
    const first = instance.process(job({ requestId: 'slow', deadlineUnixMs: Date.now() + 60_000 }));
    while (calls.generate.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    // Waits behind the running batch (its image's features are cached by now); its fuse point is 200 ms away.
    const late = instance.process(job({ requestId: 'late', deadlineUnixMs: Date.now() + 200 }));
    const output = await late;
    open();
    expect(output).toMatchObject({ status: 'timed_out', errorCode: 'deadline_exceeded' });
    expect(output.error).toMatch(/dropped before computing/);
    expect((await first).status).toBe('ok');
    expect(calls.generate.map((batch) => batch.map((request) => request.prompt))).toHaveLength(1);
  });

  it("answers a job cancelled by its caller's signal as cancelled", async () => {
    const { instance, calls } = processor(Date.now);
    const cancel = new AbortController();
    cancel.abort(new Error('worker cancelled the job'));
    const output = await instance.process(job({ deadlineUnixMs: Date.now() + 60_000 }), [cancel.signal]);
    expect(output).toMatchObject({ status: 'skipped', errorCode: 'cancelled' });
    expect(calls.generate).toHaveLength(0);
  });

  // A payload that does not parse never gets here: the queue's catalogue refuses it (expert.app.spec.ts).
  it('fails permanently on a job for another expert, an undecodable or a missing image, each with its code', async () => {
    const codeOf = (promise: Promise<unknown>) =>
      promise.then(
        () => 'resolved',
        (error: unknown) => (error instanceof PermanentJobError ? `${error.errorCode}: ${error.message}` : String(error)),
      );
    expect(await codeOf(processor().instance.process(job({ expertId: 'object' })))).toMatch(/^invalid_params: .*reached expert "theme"/);
    expect(await codeOf(processor().instance.process(job({ images: [ref(SHA_A), ref('c'.repeat(64))] })))).toMatch(/^invalid_image: image_undecodable/);
    expect(await codeOf(processor().instance.process(job({ images: [ref(SHA_A), ref('d'.repeat(64))] })))).toMatch(
      new RegExp(`^image_missing: image ${'d'.repeat(64)} is not in the blob store`),
    );
  });

  it('refuses an image over the configured decode limits as invalid_image', async () => {
    const calls = { generate: [] as GenerationRequest[][], encode: [] as { width: number; imagesInPrompt: number }[] };
    const instance = new ExpertJobProcessor({
      expertId: 'theme',
      modelName: 'tiny',
      model: fakeModel(calls),
      images: { get: async (sha) => ({ bytes: blobs.get(sha)!, mediaType: 'image/png' }) },
      features: { getOrCompute: async (_key, compute) => ({ ...(await compute()), cached: false }) },
      batching: { maxBatchSize: 8, maxWaitMs: 0 },
      imageLimits: { maxSide: 5 },
      publishPartial: async () => undefined,
      now: () => 1_000,
    });
    // SHA_B is 6 × 4: over a 5-pixel side.
    await expect(instance.process(job({ images: [ref(SHA_B)] }))).rejects.toMatchObject({ errorCode: 'invalid_image', message: expect.stringMatching(/limit of 5 pixels/) });
    expect(await instance.process(job({ images: [ref(SHA_A)] }))).toMatchObject({ status: 'ok' });
  });
});
