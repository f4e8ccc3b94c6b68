import { describe, expect, it } from 'vitest';
import { formatExpertJobFailure, type AggregateJobData, type ExpertOutputJson } from '@rsmoe/contracts';
import { buildResult } from './result-builder';

const timings = { queueMs: 3, preprocessMs: 1, visionEncodeMs: 2, prefillMs: 1, decodeMs: 5, timeToFirstTokenMs: 4, computeMs: 9 };

function output(expertId: string, text: string): ExpertOutputJson {
  return { expertId, prompt: `p-${expertId}`, text, status: 'ok', promptTokens: 10, generatedTokens: 4, finishReason: 'length', timings, model: 'm', featuresCached: false };
}

const job: AggregateJobData = {
  requestId: 'r1',
  task: 'caption',
  routed: ['theme', 'object', 'relation'].map((expertId) => ({ expertId, prompt: `p-${expertId}`, reason: `caption aspect ${expertId}` })),
  deadlineUnixMs: 2_000,
  receivedAtUnixMs: 1_000,
  pack: { name: 'pack', version: '1.0.0' },
  fusionStrategy: 'ordered-dedup',
  replyTo: 'rsmoe:inbox:router-1',
};

describe('buildResult', () => {
  it('fuses every expert in routed order when all answered', () => {
    const outputs = new Map([
      ['relation', output('relation', 'a road runs next to the trees.')],
      ['theme', output('theme', 'a dense residential area.')],
      ['object', output('object', 'many buildings and some trees.')],
    ]);
    const result = buildResult(job, { outputs, failures: new Map() }, 1_250);
    expect(result.caption).toBe('A dense residential area. Many buildings and some trees. A road runs next to the trees.');
    expect(result.experts.map((expert) => expert.expertId)).toEqual(['theme', 'object', 'relation']);
    expect(result.degraded).toBe(false);
    expect(result.missingExperts).toEqual([]);
    expect(result.timings).toEqual({ queueMs: 3, computeMs: 9, totalMs: 250 });
    expect(result.routed[0]).toEqual({ expertId: 'theme', reason: 'caption aspect theme' });
  });

  it('marks failed and missing experts, and still fuses the rest', () => {
    const result = buildResult(
      job,
      { outputs: new Map([['theme', output('theme', 'a farmland.')]]), failures: new Map([['object', 'image_undecodable: bad bytes']]) },
      1_900,
    );
    expect(result.caption).toBe('A farmland.');
    expect(result.degraded).toBe(true);
    expect(result.missingExperts).toEqual(['object', 'relation']);
    expect(result.experts[1]).toMatchObject({ expertId: 'object', status: 'failed', errorCode: 'internal', error: 'image_undecodable: bad bytes', prompt: 'p-object' });
    expect(result.experts[2]).toMatchObject({ expertId: 'relation', status: 'timed_out', errorCode: 'deadline_exceeded' });
  });

  it('reads the typed code of a failed job, and marks the experts routed around as unavailable', () => {
    const failures = new Map([['object', formatExpertJobFailure({ errorCode: 'invalid_image', message: 'could not decode the PNG image' })]]);
    const result = buildResult({ ...job, unavailableExperts: ['relation'] }, { outputs: new Map([['theme', output('theme', 'a farmland.')]]), failures }, 1_100);
    expect(result.experts[1]).toMatchObject({ status: 'failed', errorCode: 'invalid_image', error: 'could not decode the PNG image' });
    expect(result.experts[2]).toMatchObject({ status: 'skipped', errorCode: 'expert_unavailable', error: expect.stringContaining('expert.relation') });
    expect(result).toMatchObject({ degraded: true, missingExperts: ['object', 'relation'], caption: 'A farmland.' });
  });

  it('keeps an expert output code, fills one for an older expert that sent none, and echoes the correlation id', () => {
    const dropped = { ...output('object', ''), status: 'timed_out' as const, error: 'dropped without computing' };
    const refused = { ...output('relation', ''), status: 'failed' as const, errorCode: 'invalid_params' as const, error: 'maxNewTokens' };
    const outputs = new Map([['theme', output('theme', 'a farmland.')], ['object', dropped], ['relation', refused]]);
    const result = buildResult({ ...job, correlationId: 'client-7' }, { outputs, failures: new Map() }, 1_100);
    expect(result.experts.map((expert) => expert.errorCode)).toEqual([undefined, 'deadline_exceeded', 'invalid_params']);
    expect(result.correlationId).toBe('client-7');
    expect(buildResult(job, { outputs, failures: new Map() }, 1_100)).not.toHaveProperty('correlationId');
  });

  it('picks an answer for a question', () => {
    const vqa: AggregateJobData = { ...job, task: 'vqa', question: 'how many cars ?', questionType: 'count', routed: [job.routed[1]], fusionStrategy: 'priority' };
    const result = buildResult(vqa, { outputs: new Map([['object', output('object', 'Three.')]]), failures: new Map() }, 1_100);
    expect(result).toMatchObject({ answer: '3', question: 'how many cars ?', questionType: 'count', degraded: false });
  });
});
