import { z } from 'zod';
import { generationParamsSchema, type GenerationParams } from './generation-params';
import { EXPERT_ID_PATTERN, REQUEST_ID_PATTERN, SHA256_HEX_PATTERN, type ExpertId } from './identifiers';
import { EXPERT_STATUSES, FINISH_REASONS, QUESTION_TYPES, TASKS, type ExpertStatus, type FinishReason, type QuestionType, type Task } from './tasks';
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
}

/** Data of a child job on `expert.<expertId>` (job name JOB_NAMES.expertGenerate, job id expertJobId()). */
export interface ExpertJobData {
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
  /** Request-level decoding overrides, already merged over the pack's expert settings. */
  generation: GenerationParams;
  /** After this instant (Unix ms) the job is dropped, not computed. */
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
  /** Why the expert failed, timed out or was skipped. */
  error?: string;
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
}

/** The return value of an expert job (status `ok`, or `skipped` when dropped past its deadline). */
export type ExpertJobResult = ExpertOutputJson;

/** Data of the parent job on `aggregate` (job name JOB_NAMES.aggregate, job id aggregateJobId()). */
export interface AggregateJobData {
  requestId: string;
  task: Task;
  /** The question (task `vqa`). */
  question?: string;
  /** The question type the router found (task `vqa`). */
  questionType?: QuestionType;
  /** Every routed expert with its prompt and reason, in fusion order. */
  routed: ExpertAssignment[];
  /** After this instant (Unix ms) missing experts count as timed out. */
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
const expertIdSchema = z.string().regex(EXPERT_ID_PATTERN, 'must match /^[a-z][a-z0-9_-]{0,31}$/');

export const expertAssignmentSchema: z.ZodType<ExpertAssignment, z.ZodTypeDef, unknown> = z.object({
  expertId: expertIdSchema,
  prompt: z.string().min(1),
  reason: z.string(),
});

export const expertJobDataSchema: z.ZodType<ExpertJobData, z.ZodTypeDef, unknown> = z.object({
  requestId: requestIdSchema,
  task: z.enum(TASKS),
  expertId: expertIdSchema,
  prompt: z.string().min(1),
  images: z
    .array(imageRefSchema)
    .min(1, 'needs at least one image')
    .max(IMAGES_PER_REQUEST_LIMIT, `at most ${IMAGES_PER_REQUEST_LIMIT} images`),
  generation: generationParamsSchema,
  deadlineUnixMs: unixMs,
  enqueuedAtUnixMs: unixMs,
  replyTo: channelSchema,
});

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
  promptTokens: z.number().int().min(0),
  generatedTokens: z.number().int().min(0),
  finishReason: z.enum(FINISH_REASONS).optional(),
  timings: expertTimingsSchema,
  model: z.string(),
  featuresCached: z.boolean(),
});

export const aggregateJobDataSchema: z.ZodType<AggregateJobData, z.ZodTypeDef, unknown> = z
  .object({
    requestId: requestIdSchema,
    task: z.enum(TASKS),
    question: z.string().min(1).optional(),
    questionType: z.enum(QUESTION_TYPES).optional(),
    routed: z.array(expertAssignmentSchema).min(1),
    deadlineUnixMs: unixMs,
    receivedAtUnixMs: unixMs,
    pack: z.object({ name: z.string().min(1), version: z.string().min(1) }),
    fusionStrategy: z.string().min(1),
    replyTo: channelSchema,
  })
  .superRefine((data, ctx) => {
    if (data.task === 'vqa' && data.question === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['question'], message: 'required when task is vqa' });
    }
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
