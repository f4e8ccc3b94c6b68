import { resolve } from 'node:path';
import type { AggregateJobData, ExpertJobData, ExpertOutputJson, InferenceResultJson } from '../src';

export const TINY_PACK_DIR = resolve(__dirname, '../../../models/fixtures/tiny-pack');
export const TINY_MODEL_DIR = resolve(__dirname, '../../../models/fixtures/tiny-llava');

export const SHA = 'a'.repeat(64);

export function expertJobData(overrides: Partial<ExpertJobData> = {}): ExpertJobData {
  return {
    requestId: 'req-1',
    task: 'caption',
    expertId: 'theme',
    prompt: 'describe the scene theme of the image .',
    images: [{ sha256: SHA, byteLength: 1234, mediaType: 'image/png' }],
    generation: { maxNewTokens: 12 },
    deadlineUnixMs: 1_700_000_030_000,
    enqueuedAtUnixMs: 1_700_000_000_000,
    replyTo: 'rsmoe:inbox:router-1',
    ...overrides,
  };
}

export function expertOutput(overrides: Partial<ExpertOutputJson> = {}): ExpertOutputJson {
  return {
    expertId: 'theme',
    prompt: 'describe the scene theme of the image .',
    text: 'a dense residential area.',
    status: 'ok',
    promptTokens: 25,
    generatedTokens: 5,
    finishReason: 'eos',
    timings: { queueMs: 1.5, preprocessMs: 2, visionEncodeMs: 3.25, prefillMs: 4, decodeMs: 5, timeToFirstTokenMs: 9, computeMs: 14.5 },
    model: 'tiny-llava',
    featuresCached: false,
    ...overrides,
  };
}

export function aggregateJobData(overrides: Partial<AggregateJobData> = {}): AggregateJobData {
  return {
    requestId: 'req-1',
    task: 'vqa',
    question: 'how many cars are there ?',
    questionType: 'count',
    routed: [{ expertId: 'object', prompt: 'objects . answer the question : how many cars are there ?', reason: 'question type count ∈ object.questionTypes' }],
    deadlineUnixMs: 1_700_000_030_000,
    receivedAtUnixMs: 1_700_000_000_000,
    pack: { name: 'tiny-pack', version: '0.1.0' },
    fusionStrategy: 'priority',
    replyTo: 'rsmoe:inbox:router-1',
    ...overrides,
  };
}

export function captionResult(overrides: Partial<InferenceResultJson> = {}): InferenceResultJson {
  return {
    requestId: 'req-1',
    task: 'caption',
    caption: 'A dense residential area. Many cars.',
    experts: [
      expertOutput(),
      expertOutput({ expertId: 'object', text: 'many cars.', featuresCached: true, finishReason: 'length' }),
      expertOutput({ expertId: 'relation', text: '', status: 'timed_out', error: 'deadline passed', finishReason: undefined, generatedTokens: 0 }),
    ],
    routed: [
      { expertId: 'theme', reason: 'caption: fusion position 1 of 3' },
      { expertId: 'object', reason: 'caption: fusion position 2 of 3' },
      { expertId: 'relation', reason: 'caption: fusion position 3 of 3' },
    ],
    degraded: true,
    missingExperts: ['relation'],
    timings: { queueMs: 1.5, computeMs: 14.5, totalMs: 30.25 },
    packName: 'tiny-pack',
    packVersion: '0.1.0',
    fusionStrategy: 'ordered-dedup',
    ...overrides,
  };
}
