import { ContractValidationError } from './errors';
import type { GenerationParams } from './generation-params';
import { isSha256Hex } from './identifiers';
import { inferenceResultSchema, type InferenceResultJson } from './inference-result';
import { IMAGES_PER_REQUEST_LIMIT, expertOutputSchema, percentBoxSchema, type ExpertOutputJson, type ImageRefJson, type PercentBoxJson } from './job-payloads';
import { expertsInOrder, type PackManifest } from './pack-manifest';
import type {
  ProtoChangeOutput__Output,
  ProtoExpertErrorCode__Output,
  ProtoPercentBox,
  ProtoPercentBox__Output,
  ProtoExpertOutput,
  ProtoExpertOutput__Output,
  ProtoExpertStatus__Output,
  ProtoGenerationParams,
  ProtoGenerationParams__Output,
  ProtoImageRef,
  ProtoImageRef__Output,
  ProtoInferenceResult,
  ProtoInferenceResult__Output,
  ProtoListExpertsResponse,
  ProtoTask__Output,
} from './proto-types';
import { expertQueueName } from './queues';
import { EXPERT_TASKS, type ChangeOutput, type ExpertErrorCode, type ExpertStatus, type Task } from './tasks';
import { parseWith } from './validation';

const TASK_TO_PROTO: Record<Task, ProtoTask__Output> = {
  caption: 'CAPTION',
  vqa: 'VQA',
  classification: 'CLASSIFICATION',
  grounding: 'GROUNDING',
  referring: 'REFERRING',
  segmentation: 'SEGMENTATION',
  change: 'CHANGE',
};
const STATUS_TO_PROTO: Record<ExpertStatus, ProtoExpertStatus__Output> = {
  ok: 'OK',
  failed: 'FAILED',
  timed_out: 'TIMED_OUT',
  skipped: 'SKIPPED',
  unparseable: 'UNPARSEABLE',
};
const CHANGE_OUTPUT_TO_PROTO: Record<ChangeOutput, ProtoChangeOutput__Output> = { caption: 'CHANGE_CAPTION', mask: 'CHANGE_MASK', both: 'CHANGE_BOTH' };

const ERROR_CODE_TO_PROTO: Record<ExpertErrorCode, ProtoExpertErrorCode__Output> = {
  invalid_image: 'INVALID_IMAGE',
  image_missing: 'IMAGE_MISSING',
  invalid_params: 'INVALID_PARAMS',
  deadline_exceeded: 'DEADLINE_EXCEEDED',
  cancelled: 'CANCELLED',
  expert_unavailable: 'EXPERT_UNAVAILABLE',
  overloaded: 'OVERLOADED',
  internal: 'INTERNAL',
  unparseable_output: 'UNPARSEABLE_OUTPUT',
};

function invert<K extends string, V extends string>(map: Record<K, V>): Map<V, K> {
  return new Map(Object.entries(map).map(([k, v]) => [v as V, k as K]));
}
const TASK_FROM_PROTO = invert(TASK_TO_PROTO);
const STATUS_FROM_PROTO = invert(STATUS_TO_PROTO);
const ERROR_CODE_FROM_PROTO = invert(ERROR_CODE_TO_PROTO);
const CHANGE_OUTPUT_FROM_PROTO = invert(CHANGE_OUTPUT_TO_PROTO);

export function changeOutputToProto(output: ChangeOutput): ProtoChangeOutput__Output {
  return CHANGE_OUTPUT_TO_PROTO[output];
}

/** UNSPECIFIED (or a value this build does not know) is `both`, the default. */
export function changeOutputFromProto(output: ProtoChangeOutput__Output | string | number | null | undefined): ChangeOutput {
  return CHANGE_OUTPUT_FROM_PROTO.get(output as ProtoChangeOutput__Output) ?? 'both';
}

export function percentBoxToProto(box: PercentBoxJson): ProtoPercentBox {
  return { x1: box.x1, y1: box.y1, x2: box.x2, y2: box.y2 };
}

function percentBoxFields(box: ProtoPercentBox__Output): Record<string, number> {
  return { x1: box.x1, y1: box.y1, x2: box.x2, y2: box.y2 };
}

/** A request's region; throws ContractValidationError naming the problem (outside 0-100, or empty). */
export function percentBoxFromProto(box: ProtoPercentBox__Output | null | undefined, field = 'box'): PercentBoxJson {
  if (!box) throw new ContractValidationError('PercentBox', [`${field}: required`]);
  const parsed = percentBoxSchema.safeParse(percentBoxFields(box));
  if (!parsed.success) throw new ContractValidationError('PercentBox', parsed.error.issues.map((issue) => `${[field, ...issue.path].join('.')}: ${issue.message}`));
  return parsed.data;
}

export function expertErrorCodeToProto(code: ExpertErrorCode | undefined): ProtoExpertErrorCode__Output {
  return code === undefined ? 'EXPERT_ERROR_CODE_UNSPECIFIED' : ERROR_CODE_TO_PROTO[code];
}

/**
 * The JSON code of a proto ExpertErrorCode; undefined for UNSPECIFIED and for a value this build does not
 * know (a newer sender's code: the output still parses, `error` keeps the detail).
 */
export function expertErrorCodeFromProto(code: ProtoExpertErrorCode__Output | string | number | null | undefined): ExpertErrorCode | undefined {
  return code === null || code === undefined ? undefined : ERROR_CODE_FROM_PROTO.get(code as ProtoExpertErrorCode__Output);
}

export function taskToProto(task: Task): ProtoTask__Output {
  return TASK_TO_PROTO[task];
}

/** The task of a proto enum value; throws ContractValidationError for TASK_UNSPECIFIED or an unknown value. */
export function taskFromProto(task: ProtoTask__Output | string | number, field = 'task'): Task {
  const value = TASK_FROM_PROTO.get(task as ProtoTask__Output);
  if (value === undefined) throw new ContractValidationError('task', [`${field}: must be one of ${Object.values(TASK_TO_PROTO).join(', ')} (got ${String(task)})`]);
  return value;
}

export function expertStatusToProto(status: ExpertStatus): ProtoExpertStatus__Output {
  return STATUS_TO_PROTO[status];
}

export function expertStatusFromProto(status: ProtoExpertStatus__Output | string | number, field = 'status'): ExpertStatus {
  const value = STATUS_FROM_PROTO.get(status as ProtoExpertStatus__Output);
  if (value === undefined) throw new ContractValidationError('ExpertStatus', [`${field}: must be one of ${Object.values(STATUS_TO_PROTO).join(', ')} (got ${String(status)})`]);
  return value;
}

/** The image reference of a request; throws ContractValidationError when it is missing or malformed. */
export function imageRefFromProto(ref: ProtoImageRef__Output | null | undefined, field = 'image'): ImageRefJson {
  if (!ref) throw new ContractValidationError('ImageRef', [`${field}: required`]);
  const problems: string[] = [];
  if (!isSha256Hex(ref.sha256)) problems.push(`${field}.sha256: must be 64 lower-case hex characters`);
  const byteLength = Number(ref.byteLength);
  if (!Number.isSafeInteger(byteLength) || byteLength <= 0) problems.push(`${field}.byteLength: must be a positive integer (got ${ref.byteLength})`);
  if (!/^[a-z]+\/[a-z0-9.+-]+$/i.test(ref.mediaType)) problems.push(`${field}.mediaType: must be a media type such as image/png`);
  if (problems.length > 0) throw new ContractValidationError('ImageRef', problems);
  return { sha256: ref.sha256, byteLength, mediaType: ref.mediaType };
}

export function imageRefToProto(ref: ImageRefJson): ProtoImageRef {
  return { sha256: ref.sha256, byteLength: ref.byteLength, mediaType: ref.mediaType };
}

/**
 * The image references of a request, in prompt order; throws ContractValidationError naming every bad
 * reference, or when there is none or more than `maxImages` (at most IMAGES_PER_REQUEST_LIMIT).
 */
export function imageRefsFromProto(
  refs: readonly ProtoImageRef__Output[] | null | undefined,
  maxImages: number = IMAGES_PER_REQUEST_LIMIT,
  field = 'images',
): ImageRefJson[] {
  const limit = Math.min(maxImages, IMAGES_PER_REQUEST_LIMIT);
  const list = refs ?? [];
  if (list.length === 0) throw new ContractValidationError('ImageRef', [`${field}: at least one image is required`]);
  if (list.length > limit) throw new ContractValidationError('ImageRef', [`${field}: ${list.length} images; at most ${limit} per request`]);
  const problems: string[] = [];
  const out = list.flatMap((ref, index) => {
    try {
      return [imageRefFromProto(ref, `${field}[${index}]`)];
    } catch (error) {
      if (!(error instanceof ContractValidationError)) throw error;
      problems.push(...error.problems);
      return [];
    }
  });
  if (problems.length > 0) throw new ContractValidationError('ImageRef', problems);
  return out;
}

const GENERATION_KEYS = [
  'maxNewTokens',
  'numBeams',
  'doSample',
  'temperature',
  'topK',
  'topP',
  'seed',
  'repetitionPenalty',
  'lengthPenalty',
] as const satisfies readonly (keyof GenerationParams & keyof ProtoGenerationParams__Output)[];

/** The fields a client set (proto3 `optional` presence); an absent message gives `{}`. Values are not range-checked here. */
export function generationParamsFromProto(params: ProtoGenerationParams__Output | null | undefined): GenerationParams {
  const out: GenerationParams = {};
  if (!params) return out;
  const record = params as unknown as Record<string, unknown>;
  for (const key of GENERATION_KEYS) {
    // The virtual oneof field `_<name>` marks presence; the value alone cannot tell 0 from unset.
    const present = `_${key}` in record ? record[`_${key}`] === key : record[key] !== undefined && record[key] !== null;
    if (present) (out as Record<string, unknown>)[key] = record[key];
  }
  if (params.stopStrings && params.stopStrings.length > 0) out.stopStrings = [...params.stopStrings];
  return out;
}

export function generationParamsToProto(params: GenerationParams): ProtoGenerationParams {
  const out: ProtoGenerationParams = {};
  for (const key of GENERATION_KEYS) {
    if (params[key] !== undefined) (out as Record<string, unknown>)[key] = params[key];
  }
  if (params.stopStrings && params.stopStrings.length > 0) out.stopStrings = [...params.stopStrings];
  return out;
}

export function toProtoExpertOutput(output: ExpertOutputJson): ProtoExpertOutput {
  return {
    expertId: output.expertId,
    prompt: output.prompt,
    text: output.text,
    status: expertStatusToProto(output.status),
    error: output.error ?? '',
    errorCode: expertErrorCodeToProto(output.errorCode),
    promptTokens: output.promptTokens,
    generatedTokens: output.generatedTokens,
    timings: { ...output.timings },
    model: output.model,
    featuresCached: output.featuresCached,
    finishReason: output.finishReason ?? '',
    candidateScores: (output.candidateScores ?? []).map(({ label, value }) => ({ label, value })),
  };
}

function expertOutputFields(output: ProtoExpertOutput__Output, field: string): Record<string, unknown> {
  const t = output.timings;
  return {
    expertId: output.expertId,
    prompt: output.prompt,
    text: output.text,
    status: STATUS_FROM_PROTO.get(output.status) ?? `invalid ${String(output.status)} (${field}.status)`,
    ...(output.error ? { error: output.error } : {}),
    ...(expertErrorCodeFromProto(output.errorCode) ? { errorCode: expertErrorCodeFromProto(output.errorCode) } : {}),
    promptTokens: output.promptTokens,
    generatedTokens: output.generatedTokens,
    ...(output.finishReason ? { finishReason: output.finishReason } : {}),
    timings: {
      queueMs: t?.queueMs ?? 0,
      preprocessMs: t?.preprocessMs ?? 0,
      visionEncodeMs: t?.visionEncodeMs ?? 0,
      prefillMs: t?.prefillMs ?? 0,
      decodeMs: t?.decodeMs ?? 0,
      timeToFirstTokenMs: t?.timeToFirstTokenMs ?? 0,
      computeMs: t?.computeMs ?? 0,
    },
    model: output.model,
    featuresCached: output.featuresCached,
    ...(output.candidateScores && output.candidateScores.length > 0 ? { candidateScores: output.candidateScores.map(({ label, value }) => ({ label, value })) } : {}),
  };
}

/** A received ExpertOutput (e.g. a CaptionStream partial) as JSON; throws ContractValidationError when invalid. */
export function fromProtoExpertOutput(output: ProtoExpertOutput__Output): ExpertOutputJson {
  return parseWith(expertOutputSchema, 'ExpertOutput', expertOutputFields(output, 'partial'));
}

/** The JSON result as the proto message (empty strings for fields of the other task). */
export function toProtoResult(result: InferenceResultJson): ProtoInferenceResult {
  return {
    requestId: result.requestId,
    correlationId: result.correlationId ?? '',
    task: taskToProto(result.task),
    caption: result.caption ?? '',
    answer: result.answer ?? '',
    question: result.question ?? '',
    questionType: result.questionType ?? '',
    experts: result.experts.map(toProtoExpertOutput),
    routed: result.routed.map((r) => ({ expertId: r.expertId, reason: r.reason })),
    degraded: result.degraded,
    missingExperts: [...result.missingExperts],
    timings: { ...result.timings },
    packName: result.packName,
    packVersion: result.packVersion,
    fusionStrategy: result.fusionStrategy,
    label: result.label ?? '',
    labelScores: (result.labelScores ?? []).map(({ label, value }) => ({ label, value })),
    boxes: (result.boxes ?? []).map(percentBoxToProto),
    ...(result.mask ? { mask: { ...result.mask, labels: Buffer.from(result.mask.labels, 'base64') } } : {}),
    query: result.query ?? '',
    ...(result.box ? { box: percentBoxToProto(result.box) } : {}),
  };
}

/** The result fields of RSUniVLM's tasks that a task carries (proto empty values of other tasks dropped). */
function taskOutputFields(task: Task | undefined, result: ProtoInferenceResult__Output): Record<string, unknown> {
  const mask = result.mask ? { mask: { width: result.mask.width, height: result.mask.height, labels: Buffer.from(result.mask.labels).toString('base64'), classes: [...result.mask.classes] } } : {};
  switch (task) {
    case 'classification':
      return {
        ...(result.label ? { label: result.label } : {}),
        ...(result.labelScores.length > 0 ? { labelScores: result.labelScores.map(({ label, value }) => ({ label, value })) } : {}),
      };
    case 'grounding':
      return { boxes: result.boxes.map(percentBoxFields), ...(result.query ? { query: result.query } : {}) };
    case 'referring':
      return { caption: result.caption, ...(result.box ? { box: percentBoxFields(result.box) } : {}) };
    case 'segmentation':
      return { ...mask, ...(result.query ? { query: result.query } : {}) };
    case 'change':
      return { ...(result.caption ? { caption: result.caption } : {}), ...mask };
    default:
      return {};
  }
}

/**
 * A received result as JSON: `caption` is set for a caption, `answer`/`question`/`questionType` for a
 * question (proto empty strings of the other task are dropped). Throws ContractValidationError when invalid.
 */
export function fromProtoResult(result: ProtoInferenceResult__Output): InferenceResultJson {
  const task = TASK_FROM_PROTO.get(result.task);
  const t = result.timings;
  const json: Record<string, unknown> = {
    requestId: result.requestId,
    ...(result.correlationId ? { correlationId: result.correlationId } : {}),
    task: task ?? `invalid ${String(result.task)}`,
    ...(task === 'caption' ? { caption: result.caption } : {}),
    ...(task === 'vqa' ? { answer: result.answer, question: result.question } : {}),
    ...(task === 'vqa' && result.questionType ? { questionType: result.questionType } : {}),
    ...taskOutputFields(task, result),
    experts: result.experts.map((e, i) => expertOutputFields(e, `experts[${i}]`)),
    routed: result.routed.map((r) => ({ expertId: r.expertId, reason: r.reason })),
    degraded: result.degraded,
    missingExperts: [...result.missingExperts],
    timings: { queueMs: t?.queueMs ?? 0, computeMs: t?.computeMs ?? 0, totalMs: t?.totalMs ?? 0 },
    packName: result.packName,
    packVersion: result.packVersion,
    fusionStrategy: result.fusionStrategy,
  };
  return parseWith(inferenceResultSchema, 'InferenceResult', json);
}

/**
 * The ListExperts response of a pack: experts in fusion order, each with its queue name and, when `live`
 * knows it (the router's last queue poll), its live worker count and interactive backlog.
 */
export function toListExpertsResponse(
  manifest: PackManifest,
  live: (expertId: string) => { liveWorkers: number; waitingJobs: number } | undefined = () => undefined,
): ProtoListExpertsResponse {
  return {
    packName: manifest.name,
    packVersion: manifest.version,
    experts: expertsInOrder(manifest).map((expert) => {
      const known = live(expert.id);
      return {
        ...(known ? { liveWorkers: known.liveWorkers, waitingJobs: known.waitingJobs } : {}),
        id: expert.id,
        description: expert.description,
        aspects: [...expert.aspects],
        questionTypes: [...expert.questionTypes],
        model: expert.modelName,
        queue: expertQueueName(expert.id),
        tasks: EXPERT_TASKS.filter((task) => expert.prompts[task] !== undefined),
        granularity: expert.granularity ?? '',
      };
    }),
  };
}
