import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VlmRuntime } from '@rsmoe/runtime';
import { ONEVISION_DIR, oneVisionReferenceCase, startMesh, writeTempPack, type RunningMesh } from './mesh-fixture';

const twoImages = oneVisionReferenceCase('two-images-one-prompt');
const TINY_LLAVA = resolve(__dirname, '../../models/fixtures/tiny-llava');

interface Answer {
  task?: string;
  caption?: string;
  degraded?: boolean;
  missingExperts?: string[];
  mask?: unknown;
  experts?: { expertId: string; status: string; errorCode?: string; text: string }[];
  error?: { code: string; message: string; details?: { experts?: { expertId: string; status: string; errorCode?: string }[] } };
}

/**
 * RSUniVLM's tasks through the whole mesh as real processes, routed by task tag: the image-level expert is
 * transformers' own tiny LLaVA-OneVision (a change caption from two images must be its exact tokens), the
 * region and pixel experts the random tiny-llava, whose texts are no boxes or masks: their answers are
 * `unparseable`, and a request with nothing else is 502 experts_failed. What the trained experts answer is
 * checked on models/demo.
 */
describe("RSUniVLM's tasks end to end (routing, two images, unparseable outputs)", { timeout: 120_000 }, () => {
  let pack: { dir: string; remove(): void };
  let running: RunningMesh;
  let runtime: VlmRuntime;
  const images = twoImages.images.map((image) => readFileSync(join(ONEVISION_DIR, image)));

  beforeAll(async () => {
    pack = writeTempPack({
      name: 'rsunivlm-e2e',
      version: '0.0.1',
      labels: { classification: ['airport', 'farmland'], segmentation: ['others', 'building'] },
      experts: [
        {
          id: 'image',
          model: ONEVISION_DIR,
          granularity: 'image',
          prompts: { change_caption: twoImages.prompt, classification: 'What land use is shown here?' },
          generation: { maxNewTokens: twoImages.maxNewTokens, numBeams: 1, doSample: false },
        },
        { id: 'region', model: TINY_LLAVA, granularity: 'region', prompts: { grounding: 'where is the {query} ?' }, generation: { maxNewTokens: 8 } },
        { id: 'pixel', model: TINY_LLAVA, granularity: 'pixel', prompts: { segmentation: 'segment {query} .', change_mask: 'what changed ?' }, generation: { maxNewTokens: 8 } },
      ],
      router: { model: null },
    });
    running = await startMesh({}, pack.dir);
    runtime = await VlmRuntime.load(ONEVISION_DIR, { executionProvider: 'cpu', intraOpThreads: 1, logger: { info: () => undefined, warn: () => undefined } });
  });

  afterAll(async () => {
    await runtime?.release();
    await running?.stop();
    pack?.remove();
  });

  async function post(path: string, files: Record<string, Buffer>, fields: Record<string, string> = {}): Promise<{ status: number; body: Answer }> {
    const form = new FormData();
    for (const [name, bytes] of Object.entries(files)) form.append(name, new Blob([new Uint8Array(bytes)]), `${name}.png`);
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    const response = await fetch(`${running.url}${path}`, { method: 'POST', body: form });
    return { status: response.status, body: (await response.json()) as Answer };
  }

  it('a change: the image expert captions the pair with transformers’ tokens ([CCD]), the pixel expert’s text is unparseable: 200 degraded', async () => {
    const [expected] = await runtime.generate([
      { prompt: twoImages.prompt, images: images.map((bytes) => new Uint8Array(bytes)), options: { maxNewTokens: twoImages.maxNewTokens, numBeams: 1 } },
    ]);
    expect(expected.tokenIds).toEqual(twoImages.greedyNewTokenIds);
    const { status, body } = await post('/v1/changes', { before: images[0], after: images[1] });
    expect(status).toBe(200);
    expect(body).toMatchObject({ task: 'change', caption: expected.text.trim(), degraded: true, missingExperts: ['pixel'] });
    expect(body.mask).toBeUndefined();
    expect(body.experts?.find((expert) => expert.expertId === 'pixel')).toMatchObject({ status: 'unparseable', errorCode: 'unparseable_output' });
    expect(body.experts?.find((expert) => expert.expertId === 'pixel')?.text.length).toBeGreaterThan(0);
  });

  it('classification scores each pack label as the whole answer: probabilities summing to 1, the label the most likely, as in-process', async () => {
    const [airport, farmland] = await runtime.scoreCandidates({ prompt: 'What land use is shown here?', images: [new Uint8Array(images[0])] }, ['airport', 'farmland']);
    const { status, body } = await post('/v1/classify', { image: images[0] });
    expect(status).toBe(200);
    const scores = (body as { labelScores?: { label: string; value: number }[] }).labelScores!;
    expect(scores.map((entry) => entry.label).sort()).toEqual(['airport', 'farmland']);
    expect(scores[0].value + scores[1].value).toBeCloseTo(1, 9);
    const expected = Math.exp(airport) / (Math.exp(airport) + Math.exp(farmland));
    expect(scores.find((entry) => entry.label === 'airport')!.value).toBeCloseTo(expected, 4);
    expect((body as { label?: string }).label).toBe(airport > farmland ? 'airport' : 'farmland');
  });

  it('grounding whose only expert writes no box is 502 experts_failed naming it unparseable', async () => {
    const { status, body } = await post('/v1/grounding', { image: images[0] }, { query: 'the runway' });
    expect(status).toBe(502);
    expect(body.error).toMatchObject({ code: 'experts_failed' });
    expect(body.error?.details?.experts).toEqual([expect.objectContaining({ expertId: 'region', status: 'unparseable', errorCode: 'unparseable_output' })]);
  });

  it('refuses a pair of different sizes, and a task no expert serves, with their codes', async () => {
    const other = readFileSync(join(ONEVISION_DIR, 'images/farmland_110x128.png'));
    const mismatch = await post('/v1/changes', { before: images[0], after: other });
    expect(mismatch).toMatchObject({ status: 422, body: { error: { code: 'image_size_mismatch' } } });
    const referring = await post('/v1/referring', { image: images[0] }, { box: '1,1,20,20' });
    expect(referring).toMatchObject({ status: 422, body: { error: { code: 'task_not_supported' } } });
    expect(referring.body.error?.message).toMatch(/it serves: classification, grounding, segmentation, change/);
  });

  it('GET /v1/experts lists each expert’s tasks and granularity', async () => {
    const response = await fetch(`${running.url}/v1/experts`);
    const body = (await response.json()) as { experts: { id: string; tasks: string[]; granularity?: string }[] };
    expect(body.experts.map(({ id, tasks, granularity }) => ({ id, tasks, granularity }))).toEqual([
      { id: 'image', tasks: ['classification', 'change_caption'], granularity: 'image' },
      { id: 'region', tasks: ['grounding'], granularity: 'region' },
      { id: 'pixel', tasks: ['segmentation', 'change_mask'], granularity: 'pixel' },
    ]);
  });
});
