import type { AggregateJobData, ExpertOutputJson, InferenceResultJson } from '@rsmoe/contracts';
import { fuseAnswers, fuseCaptions } from '@rsmoe/fusion';

/** What the children of a request produced: outputs by expert id, and failure reasons by expert id. */
export interface ChildOutcomes {
  outputs: Map<string, ExpertOutputJson>;
  failures: Map<string, string>;
}

const NO_TIMINGS = { queueMs: 0, preprocessMs: 0, visionEncodeMs: 0, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0, computeMs: 0 };

/**
 * Builds the result of one request from its routed experts and what their jobs produced. A routed expert
 * with no output is `failed` (with the job's failure reason) or `timed_out` (nothing by the deadline).
 */
export function buildResult(job: AggregateJobData, children: ChildOutcomes, nowUnixMs: number): InferenceResultJson {
  const experts: ExpertOutputJson[] = job.routed.map((routed) => {
    const output = children.outputs.get(routed.expertId);
    if (output) return output;
    const failure = children.failures.get(routed.expertId);
    return {
      expertId: routed.expertId,
      prompt: routed.prompt,
      text: '',
      status: failure === undefined ? 'timed_out' : 'failed',
      error: failure ?? 'no output before the request deadline',
      promptTokens: 0,
      generatedTokens: 0,
      timings: NO_TIMINGS,
      model: '',
      featuresCached: false,
    };
  });
  const partials = experts.map(({ expertId, text, status }) => ({ expertId, text, status }));
  const order = job.routed.map((routed) => routed.expertId);
  const missingExperts = experts.filter((expert) => expert.status !== 'ok').map((expert) => expert.expertId);
  const fused =
    job.task === 'caption'
      ? { caption: fuseCaptions(partials, { strategy: job.fusionStrategy, order }).caption }
      : { answer: fuseAnswers(partials, { strategy: job.fusionStrategy, order }).answer, question: job.question, questionType: job.questionType };
  return {
    requestId: job.requestId,
    task: job.task,
    ...fused,
    experts,
    routed: job.routed.map(({ expertId, reason }) => ({ expertId, reason })),
    degraded: missingExperts.length > 0,
    missingExperts,
    timings: {
      queueMs: Math.max(0, ...experts.map((expert) => expert.timings.queueMs)),
      computeMs: Math.max(0, ...experts.map((expert) => expert.timings.computeMs)),
      totalMs: Math.max(0, nowUnixMs - job.receivedAtUnixMs),
    },
    packName: job.pack.name,
    packVersion: job.pack.version,
    fusionStrategy: job.fusionStrategy,
  };
}
