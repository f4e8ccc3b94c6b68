import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import type { InferenceResultJson } from '@rsmoe/contracts';
import { aggregateJobData, expertOutput } from '../../../libs/contracts/test-support/fixtures';
import { AggregateProcessor, type ParentJob, type ResultSink } from './aggregate.processor';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function harness(alreadyStored: boolean) {
  const stored: { result: InferenceResultJson; notify: string }[] = [];
  const outcomes: string[] = [];
  let childReads = 0;
  const sink: ResultSink = {
    exists: async () => alreadyStored,
    store: async (result, notify) => (stored.push({ result, notify }), true),
  };
  const processor = new AggregateProcessor(sink, async () => undefined, silent as never, {
    resultStored: (_task, outcome) => void outcomes.push(outcome),
  });
  const parent: ParentJob = {
    getChildrenValues: async () => {
      childReads++;
      return { 'bull:expert.object:req-1:object': expertOutput({ expertId: 'object', text: '3' }) };
    },
    getIgnoredChildrenFailures: async () => ({}),
  };
  const job = { data: aggregateJobData(), ...parent } as unknown as Job;
  return { processor, job, stored, outcomes, childReads: () => childReads };
}

describe('AggregateProcessor.fuse', () => {
  it('fuses the children, stores the result and publishes it to the dispatching router', async () => {
    const h = harness(false);
    const result = await h.processor.fuse(h.job);
    expect(result).toMatchObject({ requestId: 'req-1', answer: '3', degraded: false });
    expect(h.stored).toEqual([{ result, notify: 'rsmoe:inbox:router-1' }]);
    expect(h.outcomes).toEqual(['complete']);
  });

  it('does nothing when the router already stored the result (its fast path), not even read the children', async () => {
    const h = harness(true);
    expect(await h.processor.fuse(h.job)).toBeUndefined();
    expect(h.childReads()).toBe(0);
    expect(h.stored).toEqual([]);
    expect(h.outcomes).toEqual([]);
  });
});
