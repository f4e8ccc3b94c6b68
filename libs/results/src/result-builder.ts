import { expertQueueName, parseExpertJobFailure, type AggregateJobData, type ExpertOutputJson, type InferenceResultJson } from '@rsmoe/contracts';
import { fuseAnswers, fuseCaptions } from '@rsmoe/fusion';
import { readTaskOutputs } from './task-outputs';

/**
 * What the expert jobs of a request produced: outputs by expert id, and failure reasons by expert id (BullMQ
 * failure reasons as the jobs left them: formatExpertJobFailure's JSON, or plain text from older experts).
 */
export interface ChildOutcomes {
  outputs: Map<string, ExpertOutputJson>;
  failures: Map<string, string>;
}

const NO_TIMINGS = { queueMs: 0, preprocessMs: 0, visionEncodeMs: 0, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0, computeMs: 0 };

/** The code of a missing output from an expert that predates errorCode (it says only its status). */
const CODE_OF_UNCODED_STATUS: Record<ExpertOutputJson['status'], ExpertOutputJson['errorCode']> = {
  ok: undefined,
  failed: 'internal',
  timed_out: 'deadline_exceeded',
  skipped: 'deadline_exceeded',
  unparseable: 'unparseable_output',
};

/** The output of a routed expert that produced none: why, as a status, a code and a detail. */
function missingOutput(job: AggregateJobData, expertId: string, failure: string | undefined): Pick<ExpertOutputJson, 'status' | 'errorCode' | 'error'> {
  if (job.unavailableExperts?.includes(expertId)) {
    return { status: 'skipped', errorCode: 'expert_unavailable', error: `no live worker on ${expertQueueName(expertId)} at dispatch: routed around` };
  }
  if (failure !== undefined) {
    const { errorCode, message } = parseExpertJobFailure(failure);
    // A reason without a code (an older expert, or BullMQ's own, e.g. a lost lock) is not an input error.
    return { status: 'failed', errorCode: errorCode ?? 'internal', error: message };
  }
  return { status: 'timed_out', errorCode: 'deadline_exceeded', error: 'no output before the request deadline' };
}

/** Captions and answers fuse every expert's text; RSUniVLM's tasks read each expert's text as its task's output. */
function fuse(job: AggregateJobData, outputs: ExpertOutputJson[]): { experts: ExpertOutputJson[]; fused: Partial<InferenceResultJson> } {
  const order = job.routed.map((routed) => routed.expertId);
  const partials = outputs.map(({ expertId, text, status }) => ({ expertId, text, status }));
  if (job.task === 'caption') return { experts: outputs, fused: { caption: fuseCaptions(partials, { strategy: job.fusionStrategy, order }).caption } };
  if (job.task === 'vqa') {
    return {
      experts: outputs,
      fused: { answer: fuseAnswers(partials, { strategy: job.fusionStrategy, order }).answer, question: job.question, questionType: job.questionType },
    };
  }
  const { experts, fields } = readTaskOutputs(job, outputs);
  return { experts, fused: fields };
}

/**
 * Builds the result of one request from its routed experts and what their jobs produced. A routed expert
 * with no output is `skipped` (routed around: `expert_unavailable`), `failed` (with the job's failure code
 * and reason) or `timed_out` (nothing by the fuse point: `deadline_exceeded`).
 */
export function buildResult(job: AggregateJobData, children: ChildOutcomes, nowUnixMs: number): InferenceResultJson {
  const outputs: ExpertOutputJson[] = job.routed.map((routed) => {
    const output = children.outputs.get(routed.expertId);
    if (output) return output.status === 'ok' || output.errorCode ? output : { ...output, errorCode: CODE_OF_UNCODED_STATUS[output.status] };
    return {
      expertId: routed.expertId,
      prompt: routed.prompt,
      text: '',
      ...missingOutput(job, routed.expertId, children.failures.get(routed.expertId)),
      promptTokens: 0,
      generatedTokens: 0,
      timings: NO_TIMINGS,
      model: '',
      featuresCached: false,
    };
  });
  const { experts, fused } = fuse(job, outputs);
  const missingExperts = experts.filter((expert) => expert.status !== 'ok').map((expert) => expert.expertId);
  return {
    requestId: job.requestId,
    ...(job.correlationId !== undefined ? { correlationId: job.correlationId } : {}),
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
