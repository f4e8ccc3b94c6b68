import { deadlineOf } from './deadline';
import type { InferenceResultJson } from './inference-result';
import { parseAggregateJobData, parseExpertJobData, type AggregateJobData, type ExpertJobData, type ExpertJobResult } from './job-payloads';
import { JOB_NAMES } from './queues';
import { SCENE_JOB_NAMES, parseSceneJobData, type SceneJobData } from './scene-jobs';

/**
 * One job name of a queue: how its data is validated, when the work stops being worth finishing, and (as a
 * type only) what its handler returns. The worker layer (libs/jobs) types handlers from these.
 */
export interface JobDefinition<Data, Result> {
  /** Validates the job's data; throws ContractValidationError naming every bad field. */
  readonly parseData: (value: unknown) => Data;
  /**
   * The instant (Unix ms) after which nobody waits for the result: the job's AbortSignal fires then.
   * Absent: the signal fires only when the worker is closed without waiting.
   */
  readonly abortAtUnixMs?: (data: Data) => number;
  /** Phantom field carrying the result type; never set. */
  readonly __result?: Result;
}

/** Any job definition, whatever its types. */
export interface AnyJobDefinition {
  readonly parseData: (value: unknown) => unknown;
  readonly abortAtUnixMs?: (data: never) => number;
}

/** Every job name of one queue with its definition. */
export type JobCatalogue = Readonly<Record<string, AnyJobDefinition>>;

export type JobDataOf<Definition> = Definition extends { parseData: (value: unknown) => infer Data } ? Data : never;
export type JobResultOf<Definition> = Definition extends JobDefinition<infer _Data, infer Result> ? Result : never;

function job<Data, Result>(parseData: (value: unknown) => Data, abortAtUnixMs?: (data: Data) => number): JobDefinition<Data, Result> {
  return abortAtUnixMs ? { parseData, abortAtUnixMs } : { parseData };
}

/**
 * The jobs of an expert queue (`expert.<id>`): generate one prompt's text. Its signal fires at the fuse point,
 * after which the output is not waited for.
 */
export const EXPERT_QUEUE_JOBS = Object.freeze({
  [JOB_NAMES.expertGenerate]: job<ExpertJobData, ExpertJobResult>(parseExpertJobData, (data) => deadlineOf(data).fuseAtUnixMs),
});

/**
 * The jobs of the `aggregate` queue: the deadline job (`finalize-at-deadline`) and the flow parent (`fuse`) of
 * routers before plain jobs,
 * both on AggregateJobData, both returning the stored result (undefined when another writer stored first).
 * No abort instant: the deadline job runs at the fuse point by design.
 */
export const AGGREGATE_QUEUE_JOBS = Object.freeze({
  [JOB_NAMES.aggregate]: job<AggregateJobData, InferenceResultJson | undefined>(parseAggregateJobData),
  [JOB_NAMES.finalizeAtDeadline]: job<AggregateJobData, InferenceResultJson | undefined>(parseAggregateJobData),
});

/**
 * The jobs of the `scenes` queue: drive one scene (tiles through the router, then stitching). No abort
 * instant: a scene runs as long as it takes; DELETE /v1/scenes/{id} cancels it through its state in Redis.
 */
export const SCENE_QUEUE_JOBS = Object.freeze({
  [SCENE_JOB_NAMES.driveScene]: job<SceneJobData, { status: string }>(parseSceneJobData),
});
