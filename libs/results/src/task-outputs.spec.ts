import { describe, expect, it } from 'vitest';
import { parseInferenceResult, type AggregateJobData, type ExpertOutputJson, type ExpertTask, type Task } from '@rsmoe/contracts';
import { buildResult } from './result-builder';

const timings = { queueMs: 3, preprocessMs: 1, visionEncodeMs: 2, prefillMs: 1, decodeMs: 5, timeToFirstTokenMs: 4, computeMs: 9 };

function output(expertId: string, text: string): ExpertOutputJson {
  return { expertId, prompt: `p-${expertId}`, text, status: 'ok', promptTokens: 10, generatedTokens: 4, finishReason: 'eos', timings, model: 'm', featuresCached: false };
}

function job(task: Task, routed: [string, ExpertTask][], inputs: Partial<AggregateJobData> = {}): AggregateJobData {
  return {
    requestId: 'r1',
    task,
    routed: routed.map(([expertId, expertTask]) => ({ expertId, task: expertTask, prompt: `p-${expertId}`, reason: 'tag' })),
    deadlineUnixMs: 2_000,
    receivedAtUnixMs: 1_000,
    pack: { name: 'pack', version: '1.0.0' },
    fusionStrategy: 'task-output',
    replyTo: 'rsmoe:inbox:router-1',
    ...inputs,
  };
}

function fuse(data: AggregateJobData, texts: Record<string, string>) {
  const outputs = new Map(Object.entries(texts).map(([expertId, text]) => [expertId, output(expertId, text)]));
  // Every result must also pass the stored-result schema.
  return parseInferenceResult(buildResult(data, { outputs, failures: new Map() }, 1_100));
}

describe("buildResult for RSUniVLM's tasks: each expert's text read as its task's output", () => {
  it('classification: the pack label the answer names (case, spacing and a final period aside)', () => {
    const data = job('classification', [['image', 'classification']], { labels: ['Airport', 'farmland'] });
    expect(fuse(data, { image: ' airport . ' })).toMatchObject({ label: 'Airport', degraded: false });
    const unknown = fuse(data, { image: 'a harbour' });
    expect(unknown).toMatchObject({ degraded: true, missingExperts: ['image'] });
    expect(unknown.label).toBeUndefined();
    expect(unknown.experts[0]).toMatchObject({ status: 'unparseable', errorCode: 'unparseable_output', text: 'a harbour', error: expect.stringContaining('not one of') });
  });

  it('classification with the expert’s label scores: probabilities over the pack labels, the label the most likely, whatever the text', async () => {
    const data = job('classification', [['image', 'classification']], { labels: ['airport', 'farmland', 'forest'] });
    const scored = { ...output('image', 'a sunny day'), candidateScores: [
      { label: 'airport', value: Math.log(0.2) },
      { label: 'farmland', value: Math.log(0.6) },
      { label: 'forest', value: Math.log(0.05) },
    ] };
    const result = parseInferenceResult(buildResult(data, { outputs: new Map([['image', scored]]), failures: new Map() }, 1_100));
    expect(result).toMatchObject({ label: 'farmland', degraded: false });
    expect(result.labelScores!.map((entry) => entry.label)).toEqual(['farmland', 'airport', 'forest']);
    expect(result.labelScores!.map((entry) => +entry.value.toFixed(6))).toEqual([+(0.6 / 0.85).toFixed(6), +(0.2 / 0.85).toFixed(6), +(0.05 / 0.85).toFixed(6)]);
  });

  it('grounding: every box of the text in percent, the query echoed; no box at all is unparseable with no boxes', () => {
    const data = job('grounding', [['region', 'grounding']], { query: 'the runway' });
    expect(fuse(data, { region: '[ 10 , 20 , 30 , 40 ] , [60, 10, 80, 20]' })).toMatchObject({
      boxes: [
        { x1: 10, y1: 20, x2: 30, y2: 40 },
        { x1: 60, y1: 10, x2: 80, y2: 20 },
      ],
      query: 'the runway',
      degraded: false,
    });
    const none = fuse(data, { region: 'there is no runway' });
    expect(none).toMatchObject({ boxes: [], degraded: true });
    expect(none.experts[0].status).toBe('unparseable');
  });

  it('referring: the description is the caption, the region echoed', () => {
    const box = { x1: 10, y1: 20, x2: 30, y2: 40 };
    expect(fuse(job('referring', [['region', 'referring']], { box }), { region: 'a storage tank .' })).toMatchObject({ caption: 'a storage tank .', box });
  });

  it('segmentation: the row run-length text becomes the label grid over the class list (others first)', () => {
    const data = job('segmentation', [['pixel', 'segmentation']], { classes: ['others', 'water'], query: 'water' });
    const result = fuse(data, { pixel: 'others * 1 , water * 2 \n water * 3' });
    expect(result.mask).toEqual({ width: 3, height: 2, labels: Buffer.from([0, 1, 1, 1, 1, 1]).toString('base64'), classes: ['others', 'water'] });
    expect(result.query).toBe('water');
    const ragged = fuse(data, { pixel: 'others*1, water*2\nwater*2' });
    expect(ragged.mask).toBeUndefined();
    expect(ragged.experts[0]).toMatchObject({ status: 'unparseable', text: 'others*1, water*2\nwater*2' });
  });

  it('change: the image expert gives the caption and the pixel expert the mask; a failed one leaves the other', () => {
    const data = job(
      'change',
      [
        ['image', 'change_caption'],
        ['pixel', 'change_mask'],
      ],
      { classes: ['others', 'changed'] },
    );
    expect(fuse(data, { image: 'two buildings were built .', pixel: 'changed*2\nothers*2' })).toMatchObject({
      caption: 'two buildings were built .',
      mask: { width: 2, height: 2, classes: ['others', 'changed'] },
      degraded: false,
    });
    const half = fuse(data, { image: 'a road was built .' });
    expect(half).toMatchObject({ caption: 'a road was built .', degraded: true, missingExperts: ['pixel'] });
    expect(half.mask).toBeUndefined();
  });
});
