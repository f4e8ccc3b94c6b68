import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBlobStore } from '@rsmoe/blobstore';
import {
  createRedisKeys,
  expertJobId,
  fromProtoResult,
  imageRefToProto,
  loadRouterPackage,
  type ImageRefJson,
  type InferenceResultJson,
  type ProtoInferenceResult__Output,
  type ProtoRouterClient,
} from '@rsmoe/contracts';
import { VlmRuntime } from '@rsmoe/runtime';
import { ONEVISION_DIR, oneVisionReferenceCase, startMesh, writeTempPack, type RunningMesh } from './mesh-fixture';

const twoImages = oneVisionReferenceCase('two-images-one-prompt');
const DESCRIBE_PROMPT = 'Describe this aerial image in one sentence.';

/**
 * A list of images through the whole mesh as real processes: the router takes two image references over
 * gRPC, each expert job carries both, the experts (transformers' own tiny LLaVA-OneVision) fetch and encode
 * each image once into the shared feature cache (one entry per image, encoder and packing) and generate
 * with the features in prompt order, exactly as transformers does.
 */
describe('several images in one request, end to end', { timeout: 90_000 }, () => {
  let pack: { dir: string; remove(): void };
  let running: RunningMesh;
  let runtime: VlmRuntime;
  let client: ProtoRouterClient;
  let refs: ImageRefJson[];
  let imageBytes: Buffer[];

  beforeAll(async () => {
    pack = writeTempPack({
      name: 'onevision-e2e',
      version: '0.0.1',
      experts: [
        {
          id: 'compare',
          model: ONEVISION_DIR,
          encoderId: 'onevision-tiny',
          aspects: ['change'],
          prompts: { caption: twoImages.prompt },
          generation: { maxNewTokens: twoImages.maxNewTokens, numBeams: 1, doSample: false },
        },
        {
          id: 'describe',
          model: ONEVISION_DIR,
          encoderId: 'onevision-tiny',
          aspects: ['scene'],
          prompts: { caption: DESCRIBE_PROMPT },
          generation: { maxNewTokens: 6, numBeams: 1, doSample: false },
        },
      ],
      router: { model: null },
    });
    running = await startMesh({}, pack.dir);
    runtime = await VlmRuntime.load(ONEVISION_DIR, { executionProvider: 'cpu', intraOpThreads: 1, logger: { info: () => undefined, warn: () => undefined } });
    imageBytes = twoImages.images.map((image) => readFileSync(join(ONEVISION_DIR, image)));
    const blobs = new RedisBlobStore(running.redis, { keyPrefix: running.prefix, ttlSeconds: 120, maxBytes: 1_000_000 });
    refs = await Promise.all(imageBytes.map((bytes) => blobs.put(bytes, 'image/png')));
    client = new (loadRouterPackage().rsmoe.v1.Router)(`127.0.0.1:${running.routerPort}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await runtime?.release();
    await running?.stop();
    pack?.remove();
  });

  function caption(requestId: string, images: ImageRefJson[]): Promise<InferenceResultJson> {
    return new Promise((resolve, reject) =>
      client.Caption(
        { requestId, images: images.map(imageRefToProto), deadlineUnixMs: Date.now() + 30_000 },
        (error: grpc.ServiceError | null, value?: ProtoInferenceResult__Output) => (error ? reject(error) : resolve(fromProtoResult(value!))),
      ),
    );
  }

  /** What an expert says for these images and prompt, in this process (greedy, as the pack asks). */
  async function inProcess(prompt: string, images: Buffer[], maxNewTokens: number) {
    const [result] = await runtime.generate([{ prompt, images: images.map((bytes) => new Uint8Array(bytes)), options: { maxNewTokens, numBeams: 1 } }]);
    return result;
  }

  it('answers a two-image request with transformers’ tokens, each image encoded into one single-crop cache entry', async () => {
    const expected = await inProcess(twoImages.prompt, imageBytes, twoImages.maxNewTokens);
    // The reference the mesh is held to: transformers' own greedy tokens for these two images.
    expect(expected.tokenIds).toEqual(twoImages.greedyNewTokenIds);
    const describeExpected = await inProcess(DESCRIBE_PROMPT, imageBytes, 6);

    const result = await caption('two-images-1', refs);
    expect(result.degraded).toBe(false);
    const byExpert = new Map(result.experts.map((expert) => [expert.expertId, expert]));
    expect(byExpert.get('compare')).toMatchObject({ status: 'ok', text: expected.text, generatedTokens: twoImages.maxNewTokens, promptTokens: expected.promptTokens });
    expect(byExpert.get('describe')).toMatchObject({ status: 'ok', text: describeExpected.text, promptTokens: describeExpected.promptTokens });

    // One entry per image, under the encoder's content hash and the several-image packing; no anyres entry.
    const keys = createRedisKeys(running.prefix);
    for (const ref of refs) {
      expect(await running.redis.exists(keys.featureCacheKey(ref.sha256, runtime.encoderId, 'single-crop'))).toBe(1);
      expect(await running.redis.exists(keys.featureCacheKey(ref.sha256, runtime.encoderId, 'anyres'))).toBe(0);
    }

    // Asked again: every expert reads both images' features from the cache.
    const again = await caption('two-images-2', refs);
    expect(again.experts.map((expert) => [expert.expertId, expert.featuresCached, expert.timings.visionEncodeMs])).toEqual([
      ['compare', true, 0],
      ['describe', true, 0],
    ]);
    expect(again.experts.find((expert) => expert.expertId === 'compare')?.text).toBe(expected.text);
  });

  it('keeps the order of the images: swapped images are another prompt', async () => {
    const swapped = await inProcess(twoImages.prompt, [...imageBytes].reverse(), twoImages.maxNewTokens);
    expect(swapped.tokenIds).not.toEqual(twoImages.greedyNewTokenIds);
    const result = await caption('two-images-swapped', [...refs].reverse());
    expect(result.experts.find((expert) => expert.expertId === 'compare')?.text).toBe(swapped.text);
  });

  it('encodes a lone image with anyres tiling, in its own cache entry next to the single-crop one', async () => {
    const expected = await inProcess(DESCRIBE_PROMPT, [imageBytes[0]], 6);
    const result = await caption('one-image', [refs[0]]);
    const describeOutput = result.experts.find((expert) => expert.expertId === 'describe');
    expect(describeOutput).toMatchObject({ status: 'ok', text: expected.text, promptTokens: expected.promptTokens });
    const keys = createRedisKeys(running.prefix);
    expect(await running.redis.exists(keys.featureCacheKey(refs[0].sha256, runtime.encoderId, 'anyres'))).toBe(1);
    expect(await running.redis.exists(keys.featureCacheKey(refs[0].sha256, runtime.encoderId, 'single-crop'))).toBe(1);
  });

  it('refuses more images than MAX_IMAGES_PER_REQUEST (4) and a missing one, before queueing anything', async () => {
    const tooMany = await caption('five-images', [...refs, ...refs, refs[0]]).catch((error: grpc.ServiceError) => error);
    expect(tooMany).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'images: 5 images; at most 4 per request' });
    const absent = { sha256: 'f'.repeat(64), byteLength: 10, mediaType: 'image/png' };
    const missing = await caption('missing-image', [refs[0], absent]).catch((error: grpc.ServiceError) => error);
    expect(missing).toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringContaining('f'.repeat(64)) });
    const none = await caption('no-image', []).catch((error: grpc.ServiceError) => error);
    expect(none).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/at least one image/) });
    for (const requestId of ['five-images', 'missing-image', 'no-image']) {
      for (const [expertId, queue] of running.queues) expect(await queue.getJob(expertJobId(requestId, expertId))).toBeUndefined();
    }
  });
});
