import { describe, expect, it } from 'vitest';
import { formatExpertJobFailure, type InferenceResultJson } from '@rsmoe/contracts';
import { aggregateJobData, expertOutput } from '../../../libs/contracts/test-support/fixtures';
import { AggregateProcessor, type FinishedJobView, type ResultSink } from './aggregate.processor';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** `jobs`: the expert jobs in Redis by expert id (the fixture routes one expert, `object`). */
function harness(alreadyStored: boolean, jobs: Record<string, FinishedJobView> = { object: { finishedOn: 1, returnvalue: expertOutput({ expertId: 'object', text: '3' }) } }) {
  const stored: { result: InferenceResultJson; notify: string }[] = [];
  const outcomes: string[] = [];
  const reads: string[] = [];
  const sink: ResultSink = {
    exists: async () => alreadyStored,
    store: async (result, notify) => (stored.push({ result, notify }), true),
  };
  const processor = new AggregateProcessor(
    sink,
    async (requestId, expertId) => {
      reads.push(`${requestId}/${expertId}`);
      return jobs[expertId];
    },
    silent as never,
    { resultStored: (_task, outcome) => void outcomes.push(outcome) },
  );
  return { processor, data: aggregateJobData(), stored, outcomes, reads };
}

describe('AggregateProcessor.finalizeAtDeadline', () => {
  it('fuses what the expert jobs hold, stores the result and publishes it to the dispatching router', async () => {
    const h = harness(false);
    const result = await h.processor.finalizeAtDeadline(h.data);
    expect(result).toMatchObject({ requestId: 'req-1', answer: '3', degraded: false });
    expect(h.stored).toEqual([{ result, notify: 'rsmoe:inbox:router-1' }]);
    expect(h.reads).toEqual(['req-1/object']);
    expect(h.outcomes).toEqual(['complete']);
  });

  it('does nothing when the router already stored the result, not even read the jobs', async () => {
    const h = harness(true);
    expect(await h.processor.finalizeAtDeadline(h.data)).toBeUndefined();
    expect(h.reads).toEqual([]);
    expect(h.stored).toEqual([]);
    expect(h.outcomes).toEqual([]);
  });

  it('counts a job still waiting or retrying as timed out, and a job failed for good with its failure code', async () => {
    const data = aggregateJobData({
      routed: [
        { expertId: 'theme', prompt: 'p', reason: 'r' },
        { expertId: 'object', prompt: 'p', reason: 'r' },
        { expertId: 'relation', prompt: 'p', reason: 'r' },
      ],
    });
    const h = harness(false, {
      theme: { returnvalue: null, failedReason: 'first attempt failed; retrying' },
      object: { finishedOn: 1, returnvalue: expertOutput({ expertId: 'object', text: '3' }) },
      relation: { finishedOn: 1, returnvalue: null, failedReason: formatExpertJobFailure({ errorCode: 'invalid_image', message: 'could not decode' }) },
    });
    const result = await h.processor.finalizeAtDeadline(data);
    expect(result?.experts.map((expert) => [expert.expertId, expert.status, expert.errorCode])).toEqual([
      ['theme', 'timed_out', 'deadline_exceeded'],
      ['object', 'ok', undefined],
      ['relation', 'failed', 'invalid_image'],
    ]);
    expect(h.outcomes).toEqual(['degraded']);
  });

  it('stores nothing when none of the expert jobs is in Redis (Redis lost the request): no invented result', async () => {
    const h = harness(false, {});
    expect(await h.processor.finalizeAtDeadline(h.data)).toBeUndefined();
    expect(h.stored).toEqual([]);
  });

  it('still stores a result when no expert was dispatched (every routed expert was routed around)', async () => {
    const h = harness(false, {});
    const result = await h.processor.finalizeAtDeadline(aggregateJobData({ unavailableExperts: ['object'] }));
    expect(result).toMatchObject({ degraded: true, missingExperts: ['object'] });
    expect(result?.experts[0]).toMatchObject({ status: 'skipped', errorCode: 'expert_unavailable' });
    expect(h.reads).toEqual([]);
  });
});

describe('AggregateProcessor.fuse (flow parents from routers before plain jobs)', () => {
  it('fuses from the same jobs: flow children have the same ids', async () => {
    const h = harness(false);
    expect(await h.processor.fuse(h.data)).toMatchObject({ requestId: 'req-1', answer: '3' });
    expect(h.reads).toEqual(['req-1/object']);
  });
});
