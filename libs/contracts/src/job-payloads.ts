import { z } from 'zod';
import { generationParamsSchema, type GenerationParams } from './generation-params';
import { CORRELATION_ID_PATTERN, EXPERT_ID_PATTERN, REQUEST_ID_PATTERN, SHA256_HEX_PATTERN, TRACEPARENT_PATTERN, type ExpertId } from './identifiers';
import {
  EXPERT_ERROR_CODES,
  EXPERT_STATUSES,
  FINISH_REASONS,
  QUESTION_TYPES,
  EXPERT_TASKS,
  TASKS,
  type ExpertErrorCode,
  type ExpertStatus,
  type ExpertTask,
  type FinishReason,
  type QuestionType,
  type Task,
} from './tasks';
import { parseWith } from './validation';

/** A reference to image bytes in the blob store; images never travel in jobs or messages. */
export interface ImageRefJson {
  /** Lower-case hex SHA-256 of the bytes (the blob store key). */
  sha256: string;
  /** Size of the image in bytes. */
  byteLength: number;
  /** Media type sniffed from the bytes, e.g. `image/png`. */
  mediaType: string;
}

/**
 * Most image references one request (and so one expert job) may carry, whatever a router is configured
 * to accept (its MAX_IMAGES_PER_REQUEST, default 4): references are small, but every image costs an
 * encoder run and prompt positions.
 */
export const IMAGES_PER_REQUEST_LIMIT = 16;

/** One routed expert, the prompt the router wrote for it and why it was chosen. */
export interface ExpertAssignment {
  expertId: ExpertId;
  /** The rendered prompt (task template filled with the question / scene hint). */
  prompt: string;
  /** Human-readable reason, e.g. `question type count ∈ object.questionTypes`. */
  reason: string;
  /**
   * What the expert was asked (the prompt template's key): how its text is read when fusing. Absent from
   * routers before RSUniVLM's tasks: the request's task (caption or vqa).
   */
  task?: ExpertTask;
}

/** A box in percent (0-100) of the image's width and height: top-left x1, y1; bottom-right x2, y2. */
export interface PercentBoxJson {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/**
 * What RSUniVLM's tasks add to a request, as the router resolved it (carried to whoever fuses): the
 * phrase, the region, the class list of a mask (index 0 `others`) and the labels a classification picks from.
 */
export interface TaskInputs {
  query?: string;
  box?: PercentBoxJson;
  /** Segmentation and change masks: the class of each mask index, `others` first. */
  classes?: string[];
  /** Classification: the labels the answer must be one of (the pack's), empty: any text. */
  labels?: string[];
}

/**
 * The envelope fields every job carries besides its request id. All optional: payloads written before they
 * existed (a rolling update: an old router, a new expert) still parse.
 */
export interface JobEnvelope {
  /** The client's own id (its X-Request-Id, CORRELATION_ID_PATTERN), echoed in the result; never a key. */
  correlationId?: string;
  /** W3C trace context of the request (the router's gRPC metadata `traceparent`), so traces join up. */
  traceparent?: string;
  /**
   * The fuse point (Unix ms, ≤ deadlineUnixMs): experts are waited for until here. Absent in payloads of
   * routers before the split, whose `deadlineUnixMs` was the fuse point: read both through deadlineOf().
   */
  fuseAtUnixMs?: number;
}

/** Data of a child job on `expert.<expertId>` (job name JOB_NAMES.expertGenerate, job id expertJobId()). */
export interface ExpertJobData extends JobEnvelope {
  requestId: string;
  task: Task;
  expertId: ExpertId;
  /** The prompt to generate for (without chat template: the runtime applies the model's). */
  prompt: string;
  /**
   * The request's images, in prompt order (1 to IMAGES_PER_REQUEST_LIMIT): references only, the bytes
   * stay in the blob store. A model packs a lone image differently from one of several (LLaVA-OneVision).
   */
  images: ImageRefJson[];
  /**
   * The lone image again, under the name experts before image lists read: the router writes it when the
   * request has exactly one image, so a rolling update with older experts keeps serving. Readers use
   * `images`; a payload with only `image` (from an older router) is read as `images: [image]`.
   */
  image?: ImageRefJson;
  /** Request-level decoding overrides, already merged over the pack's expert settings. */
  generation: GenerationParams;
  /**
   * Classification: the labels the answer must be one of; the expert also scores each as the whole answer
   * (its log-probability, `candidateScores`). Absent: generation only.
   */
  candidates?: string[];
  /**
   * The client's budget (Unix ms): nobody waits for the output after it. The job is dropped, not computed,
   * after its fuse point (deadlineOf(data).fuseAtUnixMs).
   */
  deadlineUnixMs: number;
  /** When the router enqueued the job (Unix ms); queue time is measured from here. */
  enqueuedAtUnixMs: number;
  /** The dispatching router's inbox channel (RedisKeys.routerInbox): the partial is published there. */
  replyTo: string;
}

/** Timings of one expert, in milliseconds; 0 for a stage that did not run. Image stages are summed over the images. */
export interface ExpertTimingsJson {
  /** From enqueue to a worker picking the job up. */
  queueMs: number;
  /** Fetching and decoding the image, resizing and normalising. */
  preprocessMs: number;
  /** Vision encoder (0 when features came from the cache). */
  visionEncodeMs: number;
  /** First decoder pass over the prompt. */
  prefillMs: number;
  /** All incremental decoder steps. */
  decodeMs: number;
  /** From pick-up to the first generated token. */
  timeToFirstTokenMs: number;
  /** From pick-up to the text being ready. */
  computeMs: number;
}

/** One expert's output for one request: an expert job's return value and an entry of the result. */
export interface ExpertOutputJson {
  expertId: ExpertId;
  /** The prompt the expert generated for. */
  prompt: string;
  /** Generated text; empty unless status is `ok`. */
  text: string;
  status: ExpertStatus;
  /** Why the expert failed, timed out or was skipped (human-readable detail; decide on `errorCode`). */
  error?: string;
  /** Why the output is missing, as a code (absent when `ok`, and from experts that predate the code). */
  errorCode?: ExpertErrorCode;
  /** Tokens in the prompt, image tokens included. */
  promptTokens: number;
  /** Tokens generated. */
  generatedTokens: number;
  /** Why generation stopped (status `ok` only). */
  finishReason?: FinishReason;
  timings: ExpertTimingsJson;
  /** The model that produced the text (its directory name in the pack). */
  model: string;
  /** True when every image's features came from the shared feature cache. */
  featuresCached: boolean;
  /** The job's `candidates` scored: each label's log-probability as the whole answer, in the job's order. */
  candidateScores?: LabelScoreJson[];
}

/** A label with a value: a log-probability (an expert's candidate score) or a probability (a result's label scores). */
export interface LabelScoreJson {
  label: string;
  value: number;
}

/** The return value of an expert job (status `ok`, or `skipped` when dropped past its deadline). */
export type ExpertJobResult = ExpertOutputJson;

/**
 * What fusing a request needs: the routed experts and how to read their texts. The router fuses with it, and
 * the aggregator's deadline job carries it (job name JOB_NAMES.finalizeAtDeadline; JOB_NAMES.aggregate for
 * flow parents of older routers).
 */
export interface AggregateJobData extends JobEnvelope, TaskInputs {
  requestId: string;
  task: Task;
  /** The question (task `vqa`). */
  question?: string;
  /** The question type the router found (task `vqa`). */
  questionType?: QuestionType;
  /** Every routed expert with its prompt and reason, in fusion order. */
  routed: ExpertAssignment[];
  /**
   * Routed experts the router routed around (no live worker at dispatch; a subset of `routed`): no job was
   * added for them, and the result lists them as `skipped` with errorCode `expert_unavailable`. Absent: none.
   */
  unavailableExperts?: ExpertId[];
  /**
   * The client's budget (Unix ms). Missing experts count as timed out after the fuse point
   * (deadlineOf(data).fuseAtUnixMs).
   */
  deadlineUnixMs: number;
  /** When the router received the request (Unix ms); total time is measured from here. */
  receivedAtUnixMs: number;
  pack: { name: string; version: string };
  /** Fusion strategy name (caption or answer strategy, per task). */
  fusionStrategy: string;
  /** The dispatching router's inbox channel (RedisKeys.routerInbox): the stored result is published there. */
  replyTo: string;
}

const nonNegativeMs = z.number().finite().min(0);
const unixMs = z.number().int().positive();

export const imageRefSchema: z.ZodType<ImageRefJson, z.ZodTypeDef, unknown> = z.object({
  sha256: z.string().regex(SHA256_HEX_PATTERN, 'must be 64 lower-case hex characters'),
  byteLength: z.number().int().positive(),
  mediaType: z.string().regex(/^[a-z]+\/[a-z0-9.+-]+$/i, 'must be a media type such as image/png'),
});

/** A pub/sub channel name: printable, no whitespace. */
export const channelSchema = z.string().regex(/^[!-~]{1,256}$/, 'must be 1-256 printable characters without spaces');

const requestIdSchema = z.string().regex(REQUEST_ID_PATTERN, 'must be 1-128 characters of [A-Za-z0-9_-]');

/** The JobEnvelope fields, each optional (older payloads lack them). */
const envelopeFields = {
  correlationId: z.string().regex(CORRELATION_ID_PATTERN, 'must be 1-128 printable characters without spaces').optional(),
  traceparent: z.string().regex(TRACEPARENT_PATTERN, 'must be a W3C traceparent').optional(),
  fuseAtUnixMs: unixMs.optional(),
};

function fuseNotAfterDeadline(data: { deadlineUnixMs: number; fuseAtUnixMs?: number }, ctx: z.RefinementCtx): void {
  if (data.fuseAtUnixMs !== undefined && data.fuseAtUnixMs > data.deadlineUnixMs) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['fuseAtUnixMs'], message: 'must not be after deadlineUnixMs' });
  }
}
const expertIdSchema = z.string().regex(EXPERT_ID_PATTERN, 'must match /^[a-z][a-z0-9_-]{0,31}$/');

export const expertAssignmentSchema: z.ZodType<ExpertAssignment, z.ZodTypeDef, unknown> = z.object({
  expertId: expertIdSchema,
  prompt: z.string().min(1),
  reason: z.string(),
  task: z.enum(EXPERT_TASKS).optional(),
});

const percent = z.number().finite().min(0).max(100);
export const percentBoxSchema: z.ZodType<PercentBoxJson, z.ZodTypeDef, unknown> = z
  .object({ x1: percent, y1: percent, x2: percent, y2: percent })
  .refine((box) => box.x2 > box.x1 && box.y2 > box.y1, 'x2 must be greater than x1 and y2 greater than y1');

const taskInputFields = {
  query: z.string().min(1).optional(),
  box: percentBoxSchema.optional(),
  classes: z.array(z.string().min(1)).min(1).max(255).optional(),
  labels: z.array(z.string().min(1)).optional(),
};

/** An older router's single `image` becomes the `images` list (see ExpertJobData.image). */
function imagesFromLegacyImage(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const data = value as { images?: unknown; image?: unknown };
  return data.images === undefined && data.image !== undefined ? { ...data, images: [data.image] } : value;
}

export const expertJobDataSchema: z.ZodType<ExpertJobData, z.ZodTypeDef, unknown> = z.preprocess(
  imagesFromLegacyImage,
  z
  .object({
    ...envelopeFields,
    requestId: requestIdSchema,
    task: z.enum(TASKS),
    expertId: expertIdSchema,
    prompt: z.string().min(1),
    images: z
      .array(imageRefSchema)
      .min(1, 'needs at least one image')
      .max(IMAGES_PER_REQUEST_LIMIT, `at most ${IMAGES_PER_REQUEST_LIMIT} images`),
    image: imageRefSchema.optional(),
    generation: generationParamsSchema,
    candidates: z.array(z.string().min(1)).min(1).max(255).optional(),
    deadlineUnixMs: unixMs,
    enqueuedAtUnixMs: unixMs,
    replyTo: channelSchema,
  })
  .superRefine(fuseNotAfterDeadline),
);

export const expertTimingsSchema: z.ZodType<ExpertTimingsJson, z.ZodTypeDef, unknown> = z.object({
  queueMs: nonNegativeMs,
  preprocessMs: nonNegativeMs,
  visionEncodeMs: nonNegativeMs,
  prefillMs: nonNegativeMs,
  decodeMs: nonNegativeMs,
  timeToFirstTokenMs: nonNegativeMs,
  computeMs: nonNegativeMs,
});

export const expertOutputSchema: z.ZodType<ExpertOutputJson, z.ZodTypeDef, unknown> = z.object({
  expertId: expertIdSchema,
  prompt: z.string(),
  text: z.string(),
  status: z.enum(EXPERT_STATUSES),
  error: z.string().optional(),
  errorCode: z.enum(EXPERT_ERROR_CODES).optional(),
  promptTokens: z.number().int().min(0),
  generatedTokens: z.number().int().min(0),
  finishReason: z.enum(FINISH_REASONS).optional(),
  timings: expertTimingsSchema,
  model: z.string(),
  featuresCached: z.boolean(),
  candidateScores: z.array(z.object({ label: z.string(), value: z.number() })).optional(),
});

export const aggregateJobDataSchema: z.ZodType<AggregateJobData, z.ZodTypeDef, unknown> = z
  .object({
    ...envelopeFields,
    requestId: requestIdSchema,
    task: z.enum(TASKS),
    question: z.string().min(1).optional(),
    questionType: z.enum(QUESTION_TYPES).optional(),
    routed: z.array(expertAssignmentSchema).min(1),
    unavailableExperts: z.array(expertIdSchema).optional(),
    ...taskInputFields,
    deadlineUnixMs: unixMs,
    receivedAtUnixMs: unixMs,
    pack: z.object({ name: z.string().min(1), version: z.string().min(1) }),
    fusionStrategy: z.string().min(1),
    replyTo: channelSchema,
  })
  .superRefine((data, ctx) => {
    fuseNotAfterDeadline(data, ctx);
    if (data.task === 'vqa' && data.question === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['question'], message: 'required when task is vqa' });
    }
    (data.unavailableExperts ?? []).forEach((id, i) => {
      if (!data.routed.some((r) => r.expertId === id)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['unavailableExperts', i], message: `${id} is not routed` });
    });
    const seen = new Set<string>();
    data.routed.forEach((r, i) => {
      if (seen.has(r.expertId)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['routed', i, 'expertId'], message: `duplicate expert ${r.expertId}` });
      seen.add(r.expertId);
    });
  });

/** Validates an expert job's data; throws ContractValidationError naming every bad field. */
export function parseExpertJobData(value: unknown): ExpertJobData {
  return parseWith(expertJobDataSchema, 'ExpertJobData', value);
}

/** Validates an expert job's return value (as read back by the aggregator). */
export function parseExpertJobResult(value: unknown): ExpertJobResult {
  return parseWith(expertOutputSchema, 'ExpertJobResult', value);
}

/** Validates the aggregate job's data; throws ContractValidationError naming every bad field. */
export function parseAggregateJobData(value: unknown): AggregateJobData {
  return parseWith(aggregateJobDataSchema, 'AggregateJobData', value);
}
