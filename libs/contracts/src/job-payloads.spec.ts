import { describe, expect, it } from 'vitest';
import { aggregateJobData, captionResult, expertJobData, expertOutput } from '../test-support/fixtures';
import {
  ContractValidationError,
  IMAGES_PER_REQUEST_LIMIT,
  parseAggregateJobData,
  parseRouterInboxMessage,
  parseExpertJobData,
  parseExpertJobResult,
  parseInferenceResult,
} from './index';

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ContractValidationError) return error.problems;
    throw error;
  }
  throw new Error('expected a ContractValidationError');
}

describe('ExpertJobData', () => {
  it('accepts a valid payload unchanged', () => {
    expect(parseExpertJobData(expertJobData())).toEqual(expertJobData());
  });

  it('survives a JSON round trip (BullMQ stores job data as JSON)', () => {
    expect(parseExpertJobData(JSON.parse(JSON.stringify(expertJobData())))).toEqual(expertJobData());
  });

  it('names every bad field', () => {
    const good = expertJobData().images[0];
    const bad = { ...expertJobData(), task: 'segment', images: [good, { sha256: 'nope', byteLength: -1, mediaType: 'image/png' }], deadlineUnixMs: undefined };
    const problems = problemsOf(() => parseExpertJobData(bad));
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^task: /),
        expect.stringMatching(/^images\[1\]\.sha256: must be 64 lower-case hex/),
        expect.stringMatching(/^images\[1\]\.byteLength: /),
        expect.stringMatching(/^deadlineUnixMs: Required/),
      ]),
    );
    expect(() => parseExpertJobData(bad)).toThrow(/^invalid ExpertJobData: /);
  });

  it('rejects request ids that would break job ids and unknown generation settings', () => {
    expect(problemsOf(() => parseExpertJobData(expertJobData({ requestId: 'a:b' })))).toEqual([expect.stringMatching(/^requestId: /)]);
    expect(problemsOf(() => parseExpertJobData({ ...expertJobData(), generation: { maxNewTokens: 0, beams: 2 } }))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^generation\.maxNewTokens: /), expect.stringMatching(/^generation: Unrecognized key.*beams/)]),
    );
  });

  it('carries the images in prompt order: at least one, at most IMAGES_PER_REQUEST_LIMIT references', () => {
    const [first] = expertJobData().images;
    const second = { sha256: 'b'.repeat(64), byteLength: 99, mediaType: 'image/jpeg' };
    expect(parseExpertJobData(expertJobData({ images: [first, second] })).images).toEqual([first, second]);
    expect(problemsOf(() => parseExpertJobData(expertJobData({ images: [] })))).toEqual(['images: needs at least one image']);
    const tooMany = Array.from({ length: IMAGES_PER_REQUEST_LIMIT + 1 }, () => first);
    expect(problemsOf(() => parseExpertJobData(expertJobData({ images: tooMany })))).toEqual([`images: at most ${IMAGES_PER_REQUEST_LIMIT} images`]);
    // An older router's single `image` is read as the list (rolling update); neither field is refused.
    const { images: _images, ...withoutImages } = expertJobData();
    expect(parseExpertJobData({ ...withoutImages, image: first }).images).toEqual([first]);
    expect(problemsOf(() => parseExpertJobData(withoutImages))).toEqual([expect.stringMatching(/^images: Required/)]);
  });

  it('rejects a non-object payload', () => {
    expect(problemsOf(() => parseExpertJobData('x'))).toEqual([expect.stringMatching(/^\(root\): Expected object/)]);
  });
});

describe('ExpertJobResult', () => {
  it('accepts an ok and a skipped output', () => {
    expect(parseExpertJobResult(expertOutput())).toEqual(expertOutput());
    const skipped = expertOutput({ status: 'skipped', text: '', error: 'deadline passed before pick-up', finishReason: undefined });
    expect(parseExpertJobResult(skipped)).toEqual(skipped);
  });

  it('names a negative timing and an unknown status', () => {
    const bad = { ...expertOutput(), status: 'done', timings: { ...expertOutput().timings, decodeMs: -1 } };
    expect(problemsOf(() => parseExpertJobResult(bad))).toEqual([expect.stringMatching(/^status: /), expect.stringMatching(/^timings\.decodeMs: /)]);
  });
});

describe('AggregateJobData', () => {
  it('accepts a valid payload', () => {
    expect(parseAggregateJobData(aggregateJobData())).toEqual(aggregateJobData());
  });

  it('needs the question of a vqa request, at least one routed expert and no duplicates', () => {
    expect(problemsOf(() => parseAggregateJobData(aggregateJobData({ question: undefined })))).toEqual(['question: required when task is vqa']);
    expect(problemsOf(() => parseAggregateJobData(aggregateJobData({ routed: [] })))).toEqual([expect.stringMatching(/^routed: /)]);
    const twice = aggregateJobData().routed[0];
    expect(problemsOf(() => parseAggregateJobData(aggregateJobData({ routed: [twice, twice] })))).toEqual(['routed[1].expertId: duplicate expert object']);
  });
});

describe('InferenceResultJson and router inbox messages', () => {
  it('accepts a result, an inbox message carrying it and one carrying a partial', () => {
    expect(parseInferenceResult(captionResult())).toEqual(captionResult());
    const message = JSON.stringify({ kind: 'result', requestId: 'req-1', result: captionResult() });
    expect(parseRouterInboxMessage(message)).toEqual({ kind: 'result', requestId: 'req-1', result: captionResult() });
    const output = captionResult().experts[0];
    expect(parseRouterInboxMessage({ kind: 'partial', requestId: 'req-1', output })).toEqual({ kind: 'partial', requestId: 'req-1', output });
  });

  it('rejects a message whose result belongs to another request, an unknown kind, and one that is not JSON', () => {
    expect(() => parseRouterInboxMessage({ kind: 'result', requestId: 'other', result: captionResult() })).toThrow(/result\.requestId/);
    expect(() => parseRouterInboxMessage({ kind: 'progress', requestId: 'req-1' })).toThrow(/kind/);
    expect(() => parseRouterInboxMessage('{oops')).toThrow(/not JSON/);
  });

  it('names the bad entry of the experts list', () => {
    const result = captionResult();
    result.experts[1] = { ...result.experts[1], promptTokens: 1.5 };
    expect(problemsOf(() => parseInferenceResult(result))).toEqual([expect.stringMatching(/^experts\[1\]\.promptTokens: /)]);
  });
});
