import { describe, expect, it } from 'vitest';
import { aggregateJobData, captionResult, expertJobData, expertOutput } from '../test-support/fixtures';
import {
  EXPERT_ERROR_CODES,
  computeDeadline,
  deadlineOf,
  expertErrorCodeFromProto,
  expertErrorCodeToProto,
  formatExpertJobFailure,
  fromProtoExpertOutput,
  fromProtoResult,
  isTraceparent,
  loadRouterPackage,
  parseAggregateJobData,
  parseExpertJobData,
  parseExpertJobFailure,
  parseExpertJobResult,
  parseInferenceResult,
  parseRouterInboxMessage,
  toProtoResult,
  type ProtoInferenceResult__Output,
} from './index';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** The payloads exactly as a router and an expert of the previous release wrote them (no envelope fields). */
const PREVIOUS = {
  expertJob: {
    requestId: 'req-old',
    task: 'caption',
    expertId: 'theme',
    prompt: 'describe the scene theme of the image .',
    images: [{ sha256: 'a'.repeat(64), byteLength: 1234, mediaType: 'image/png' }],
    generation: { maxNewTokens: 12 },
    deadlineUnixMs: 1_700_000_027_000,
    enqueuedAtUnixMs: 1_700_000_000_000,
    replyTo: 'rsmoe:inbox:router-1',
  },
  aggregateJob: {
    requestId: 'req-old',
    task: 'caption',
    routed: [{ expertId: 'theme', prompt: 'p', reason: 'r' }],
    deadlineUnixMs: 1_700_000_027_000,
    receivedAtUnixMs: 1_700_000_000_000,
    pack: { name: 'tiny-pack', version: '0.1.0' },
    fusionStrategy: 'ordered-dedup',
    replyTo: 'rsmoe:inbox:router-1',
  },
  failedOutput: {
    expertId: 'object',
    prompt: 'p',
    text: '',
    status: 'failed',
    error: 'image_undecodable: bad bytes',
    promptTokens: 0,
    generatedTokens: 0,
    timings: { queueMs: 0, preprocessMs: 0, visionEncodeMs: 0, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0, computeMs: 0 },
    model: '',
    featuresCached: false,
  },
};

describe('the request envelope in job payloads', () => {
  it('carries correlationId, traceparent and both deadline instants', () => {
    const data = expertJobData({ correlationId: 'client-id/1', traceparent: TRACEPARENT, fuseAtUnixMs: 1_700_000_027_000 });
    expect(parseExpertJobData(JSON.parse(JSON.stringify(data)))).toEqual(data);
    const parent = aggregateJobData({ correlationId: 'x1', traceparent: TRACEPARENT, fuseAtUnixMs: 1_700_000_027_000 });
    expect(parseAggregateJobData(parent)).toEqual(parent);
    expect(deadlineOf(parent)).toEqual({ deadlineUnixMs: 1_700_000_030_000, fuseAtUnixMs: 1_700_000_027_000 });
  });

  it('refuses a fuse point after the deadline, a malformed traceparent and a correlation id with spaces', () => {
    expect(() => parseExpertJobData(expertJobData({ fuseAtUnixMs: 1_700_000_031_000 }))).toThrow(/fuseAtUnixMs: must not be after deadlineUnixMs/);
    expect(() => parseAggregateJobData(aggregateJobData({ fuseAtUnixMs: 1_700_000_031_000 }))).toThrow(/fuseAtUnixMs: must not be after deadlineUnixMs/);
    expect(() => parseExpertJobData(expertJobData({ traceparent: 'not-a-trace' }))).toThrow(/traceparent: must be a W3C traceparent/);
    expect(() => parseExpertJobData(expertJobData({ correlationId: 'a b' }))).toThrow(/correlationId: /);
    expect(isTraceparent(TRACEPARENT)).toBe(true);
    expect(isTraceparent(`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`)).toBe(false);
  });
});

describe('rolling update: payloads of the previous shape', () => {
  it('an expert job from an old router parses, and its single deadline is the fuse point', () => {
    const data = parseExpertJobData(PREVIOUS.expertJob);
    expect(data).toEqual(PREVIOUS.expertJob);
    expect(deadlineOf(data)).toEqual({ deadlineUnixMs: 1_700_000_027_000, fuseAtUnixMs: 1_700_000_027_000 });
  });

  it('an aggregate job from an old router parses', () => {
    const data = parseAggregateJobData(PREVIOUS.aggregateJob);
    expect(deadlineOf(data).fuseAtUnixMs).toBe(1_700_000_027_000);
  });

  it('an old expert output without errorCode parses, crosses the wire and flows into a result and the inbox', () => {
    const output = parseExpertJobResult(PREVIOUS.failedOutput);
    expect(output.errorCode).toBeUndefined();
    // gRPC: an absent code is sent as UNSPECIFIED and read back as absent.
    const caption = loadRouterPackage().rsmoe.v1.Router.service.Caption;
    const result = captionResult({ experts: [expertOutput(), output], missingExperts: ['object'] });
    const decoded = caption.responseDeserialize(caption.responseSerialize(toProtoResult(result))) as ProtoInferenceResult__Output;
    expect(decoded.experts[1].errorCode).toBe('EXPERT_ERROR_CODE_UNSPECIFIED');
    expect(fromProtoResult(decoded)).toEqual(result);
    expect(parseInferenceResult(JSON.parse(JSON.stringify(result)))).toEqual(result);
    expect(parseRouterInboxMessage(JSON.stringify({ kind: 'partial', requestId: 'req-old', output: PREVIOUS.failedOutput })).kind).toBe('partial');
  });

  it('a new job payload is read by a reader that ignores the new fields (zod strips nothing it knows)', () => {
    const data = parseExpertJobData({ ...PREVIOUS.expertJob, fuseAtUnixMs: 1_700_000_020_000, correlationId: 'c', traceparent: TRACEPARENT });
    expect(data.deadlineUnixMs).toBe(1_700_000_027_000);
    expect(deadlineOf(data).fuseAtUnixMs).toBe(1_700_000_020_000);
  });
});

describe('expert error codes', () => {
  it('round-trip every code through proto and JSON', () => {
    const caption = loadRouterPackage().rsmoe.v1.Router.service.Caption;
    for (const code of EXPERT_ERROR_CODES) {
      expect(expertErrorCodeFromProto(expertErrorCodeToProto(code))).toBe(code);
      const output = expertOutput({ status: 'failed', text: '', error: 'detail', errorCode: code, finishReason: undefined });
      const decoded = caption.responseDeserialize(caption.responseSerialize(toProtoResult(captionResult({ experts: [output] })))) as ProtoInferenceResult__Output;
      expect(fromProtoExpertOutput(decoded.experts[0])).toEqual(output);
    }
    expect(expertErrorCodeToProto(undefined)).toBe('EXPERT_ERROR_CODE_UNSPECIFIED');
    expect(expertErrorCodeFromProto('SOMETHING_NEWER')).toBeUndefined();
  });

  it('refuses an unknown code in JSON', () => {
    expect(() => parseExpertJobResult({ ...PREVIOUS.failedOutput, errorCode: 'exploded' })).toThrow(/errorCode/);
  });

  it('carries the correlation id in the result both ways', () => {
    const result = captionResult({ correlationId: 'x1' });
    expect(toProtoResult(result).correlationId).toBe('x1');
    expect(toProtoResult(captionResult()).correlationId).toBe('');
    const caption = loadRouterPackage().rsmoe.v1.Router.service.Caption;
    const decoded = caption.responseDeserialize(caption.responseSerialize(toProtoResult(result))) as ProtoInferenceResult__Output;
    expect(fromProtoResult(decoded)).toEqual(result);
    expect(fromProtoResult({ ...decoded, correlationId: '' })).not.toHaveProperty('correlationId');
  });
});

describe('computeDeadline', () => {
  const policy = { defaultMs: 30_000, maxMs: 60_000, reserveFraction: 0.1, reserveMinMs: 50, reserveMaxMs: 1_000 };

  it('gives the default budget when none is asked, and a fuse point before it', () => {
    expect(computeDeadline(1_000, undefined, policy)).toEqual({ deadlineUnixMs: 31_000, fuseAtUnixMs: 30_000 });
    expect(computeDeadline(1_000, 0, policy)).toEqual({ deadlineUnixMs: 31_000, fuseAtUnixMs: 30_000 });
  });

  it('clamps to the maximum budget and keeps the reserve within its bounds', () => {
    expect(computeDeadline(1_000, 999_999, policy).deadlineUnixMs).toBe(61_000);
    expect(computeDeadline(1_000, 1_200, policy)).toEqual({ deadlineUnixMs: 1_200, fuseAtUnixMs: 1_150 });
    expect(computeDeadline(1_000, 1_020, policy)).toEqual({ deadlineUnixMs: 1_020, fuseAtUnixMs: 1_000 });
  });
});

describe('expert job failure reasons', () => {
  it('carry the code typed, and read plain text from older experts as a message alone', () => {
    const reason = formatExpertJobFailure({ errorCode: 'invalid_image', message: 'image_undecodable: bad bytes' });
    expect(parseExpertJobFailure(reason)).toEqual({ errorCode: 'invalid_image', message: 'image_undecodable: bad bytes' });
    expect(parseExpertJobFailure('image_undecodable: bad bytes')).toEqual({ message: 'image_undecodable: bad bytes' });
    expect(parseExpertJobFailure('{not json')).toEqual({ message: '{not json' });
    expect(parseExpertJobFailure('{"errorCode":"exploded","message":"x"}')).toEqual({ message: '{"errorCode":"exploded","message":"x"}' });
  });

  it('an aggregate job names its routed-around experts among the routed ones only', () => {
    expect(parseAggregateJobData(aggregateJobData({ unavailableExperts: ['object'] })).unavailableExperts).toEqual(['object']);
    expect(() => parseAggregateJobData(aggregateJobData({ unavailableExperts: ['theme'] }))).toThrow(/unavailableExperts(\.0|\[0\]): theme is not routed/);
  });
});
