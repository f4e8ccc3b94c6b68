import { describe, expect, it } from 'vitest';
import type { InferenceResultJson } from '@rsmoe/contracts';
import { aggregateJobData, expertOutput } from '../../../libs/contracts/test-support/fixtures';
import { AggregateProcessor, type ParentJob, type ResultSink } from './aggregate.processor';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function harness(alreadyStored: boolean, children: Record<string, unknown> = { 'bull:expert.object:req-1:object': expertOutput({ expertId: 'object', text: '3' }) }, parentExists = true) {
  const stored: { result: InferenceResultJson; notify: string }[] = [];
  const outcomes: string[] = [];
  let childReads = 0;
  const sink: ResultSink = {
    exists: async () => alreadyStored,
    store: async (result, notify) => (stored.push({ result, notify }), true),
  };
  const processor = new AggregateProcessor(sink, async () => (parentExists ? parent : undefined), silent as never, {
    resultStored: (_task, outcome) => void outcomes.push(outcome),
  });
  const parent: ParentJob = {
    getChildrenValues: async () => {
      childReads++;
      return children;
    },
    getIgnoredChildrenFailures: async () => ({}),
  };
  return { processor, data: aggregateJobData(), parent, stored, outcomes, childReads: () => childReads };
}

describe('AggregateProcessor.fuse', () => {
  it('fuses the children, stores the result and publishes it to the dispatching router', async () => {
    const h = harness(false);
    const result = await h.processor.fuse(h.data, h.parent);
    expect(result).toMatchObject({ requestId: 'req-1', answer: '3', degraded: false });
    expect(h.stored).toEqual([{ result, notify: 'rsmoe:inbox:router-1' }]);
    expect(h.outcomes).toEqual(['complete']);
  });

  it('does nothing when the router already stored the result (its fast path), not even read the children', async () => {
    const h = harness(true);
    expect(await h.processor.fuse(h.data, h.parent)).toBeUndefined();
    expect(h.childReads()).toBe(0);
    expect(h.stored).toEqual([]);
    expect(h.outcomes).toEqual([]);
  });

  it('stores nothing when the children left neither value nor failure (Redis lost them): no invented result', async () => {
    const h = harness(false, {});
    expect(await h.processor.fuse(h.data, h.parent)).toBeUndefined();
    expect(h.stored).toEqual([]);
  });

  it('still stores a result when no expert was dispatched (every routed expert was routed around)', async () => {
    const h = harness(false, {});
    const result = await h.processor.fuse(aggregateJobData({ unavailableExperts: ['object'] }), h.parent);
    expect(result).toMatchObject({ degraded: true, missingExperts: ['object'] });
    expect(result?.experts[0]).toMatchObject({ status: 'skipped', errorCode: 'expert_unavailable' });
  });
});

describe('AggregateProcessor.finalizeAtDeadline', () => {
  it('fuses what the parent holds at the fuse point, with the missing experts timed out', async () => {
    const h = harness(false, {});
    const result = await h.processor.finalizeAtDeadline(h.data);
    expect(result?.experts[0]).toMatchObject({ expertId: 'object', status: 'timed_out', errorCode: 'deadline_exceeded' });
    expect(h.stored).toHaveLength(1);
  });

  it('stores nothing when the flow parent is gone (Redis lost the request)', async () => {
    const h = harness(false, {}, false);
    expect(await h.processor.finalizeAtDeadline(h.data)).toBeUndefined();
    expect(h.stored).toEqual([]);
  });
});
