import { describe, expect, it } from 'vitest';
import type { ExpertJobData } from '@rsmoe/contracts';
import { ImageDecodeError, type GenerationRequest, type GenerationResult, type ImageFeatures } from '@rsmoe/runtime';
import { ExpertJobProcessor, PermanentJobError, type ExpertModel } from './expert-job.processor';

const features: ImageFeatures = { encoderId: 'enc', tokens: 2, hiddenSize: 2, data: new Float32Array(4) };

function fakeModel(calls: { generate: GenerationRequest[][]; encode: number }): ExpertModel {
  return {
    encoderId: 'enc',
    config: { imageSeqLength: 2, hiddenSize: 2 },
    preprocessImages: async (images) => {
      if ((images[0] as Uint8Array)[0] === 0xff) throw new ImageDecodeError('corrupt');
      return new Float32Array(12);
    },
    encodePixels: async () => {
      calls.encode++;
      return [features];
    },
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
    image: { sha256: 'b'.repeat(64), byteLength: 3, mediaType: 'image/png' },
    generation: { maxNewTokens: 4 },
    deadlineUnixMs: 10_000,
    enqueuedAtUnixMs: 900,
    replyTo: 'rsmoe:inbox:router-1',
    ...overrides,
  };
}

function processor(now = 1_000, imageBytes = Uint8Array.of(1, 2, 3)) {
  const calls = { generate: [] as GenerationRequest[][], encode: 0 };
  const published: string[] = [];
  const cache = new Map<string, ImageFeatures>();
  const instance = new ExpertJobProcessor({
    expertId: 'theme',
    modelName: 'tiny',
    model: fakeModel(calls),
    images: { get: async () => ({ bytes: imageBytes, mediaType: 'image/png' }) },
    features: {
      getOrCompute: async (sha, encoderId, _shape, compute) => {
        const key = `${sha}:${encoderId}`;
        const hit = cache.get(key);
        if (hit) return { features: hit, cached: true, preprocessMs: 0, visionEncodeMs: 0 };
        const computed = await compute();
        cache.set(key, computed.features);
        return { ...computed, cached: false };
      },
    },
    batching: { maxBatchSize: 8, maxWaitMs: 5 },
    publishPartial: async (replyTo, requestId, output) => void published.push(`${replyTo}>${requestId}:${output.text}`),
    now: () => now,
  });
  return { instance, calls, published };
}

describe('ExpertJobProcessor', () => {
  it('generates for a job, reports queue time, and publishes the partial', async () => {
    const { instance, published } = processor();
    const output = await instance.process(job());
    expect(output).toMatchObject({ expertId: 'theme', status: 'ok', text: 'said: describe the scene .', generatedTokens: 2, model: 'tiny', featuresCached: false });
    expect(output.timings.queueMs).toBe(100);
    expect(published).toEqual(['rsmoe:inbox:router-1>r1:said: describe the scene .']);
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
    expect(calls.encode).toBe(0);
  });

  it('fails permanently on a bad payload, a job for another expert, or an undecodable image', async () => {
    await expect(processor().instance.process({ ...job(), image: { sha256: 'nope' } })).rejects.toBeInstanceOf(PermanentJobError);
    await expect(processor().instance.process(job({ expertId: 'object' }))).rejects.toThrow(/reached expert "theme"/);
    await expect(processor(1_000, Uint8Array.of(0xff)).instance.process(job())).rejects.toThrow(/image_undecodable/);
  });
});
