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
function fakeModel(calls: { generate: GenerationRequest[][]; encode: { width: number; imagesInPrompt: number }[] }): ExpertModel {
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
      return requests.map(
        (request): GenerationResult => ({
          text: `said: ${request.prompt}`,
          tokenIds: [5, 6],
          promptTokens: 7,
          generatedTokens: 2,
          finishReason: 'length',
          timings: { preprocessMs: 0, visionEncodeMs: 0, prefillMs: 1, decodeMs: 2, timeToFirstTokenMs: 1, totalMs: 3 },
        }),
      );
    },
  };
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

function processor(now = 1_000) {
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
    model: fakeModel(calls),
    images: { get: async (sha) => (blobs.has(sha) ? { bytes: blobs.get(sha)!, mediaType: 'image/png' } : undefined) },
    features,
    batching: { maxBatchSize: 8, maxWaitMs: 5 },
    publishPartial: async (replyTo, requestId, output) => void published.push(`${replyTo}>${requestId}:${output.text}`),
    now: () => now,
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

  it('drops a job picked up after its deadline without computing it', async () => {
    const { instance, calls } = processor(20_000);
    const output = await instance.process(job());
    expect(output.status).toBe('timed_out');
    expect(output.error).toMatch(/after the request deadline/);
    expect(calls.generate).toHaveLength(0);
    expect(calls.encode).toHaveLength(0);
  });

  it('fails permanently on a bad payload, a job for another expert, an undecodable or a missing image', async () => {
    await expect(processor().instance.process({ ...job(), images: [{ sha256: 'nope' }] })).rejects.toBeInstanceOf(PermanentJobError);
    await expect(processor().instance.process({ ...job(), images: [] })).rejects.toThrow(/needs at least one image/);
    await expect(processor().instance.process(job({ expertId: 'object' }))).rejects.toThrow(/reached expert "theme"/);
    await expect(processor().instance.process(job({ images: [ref(SHA_A), ref('c'.repeat(64))] }))).rejects.toThrow(/image_undecodable/);
    await expect(processor().instance.process(job({ images: [ref(SHA_A), ref('d'.repeat(64))] }))).rejects.toThrow(
      new RegExp(`image ${'d'.repeat(64)} is not in the blob store`),
    );
  });
});
