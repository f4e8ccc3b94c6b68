import { z } from 'zod';
import { ContractValidationError } from './errors';
import { CORRELATION_ID_PATTERN, type ExpertId } from './identifiers';
import { expertOutputSchema, percentBoxSchema, type ExpertOutputJson, type LabelScoreJson, type PercentBoxJson } from './job-payloads';
import { QUESTION_TYPES, TASKS, type QuestionType, type Task } from './tasks';
import { parseWith } from './validation';

/** An expert the router chose, and why. */
export interface RoutedExpertJson {
  expertId: ExpertId;
  /** Human-readable reason, e.g. `question type count ∈ object.questionTypes`. */
  reason: string;
}

/**
 * A label mask as the pixel expert wrote it: a row-major grid of class indices, one byte per cell (255 =
 * ignore), base64 in JSON. The gateway resizes it to the image (nearest neighbour) for its answers.
 */
export interface LabelGridJson {
  width: number;
  height: number;
  /** Base64 of width × height bytes. */
  labels: string;
  /** The class of each index, `others` (RSUniVLM's background) first. */
  classes: string[];
}

/** Timings of a whole request, in milliseconds. */
export interface ResultTimingsJson {
  /** Longest queue wait among the routed experts. */
  queueMs: number;
  /** Longest expert compute time (experts run in parallel). */
  computeMs: number;
  /** From the router receiving the request to the result being stored. */
  totalMs: number;
}

/**
 * The result of one request: what the gateway returns, what `GET /v1/requests/{id}` serves and what
 * the aggregator stores (at RedisKeys.resultKey, with the result TTL). Field for field the proto's
 * `rsmoe.v1.InferenceResult` in camelCase (toProtoResult / fromProtoResult convert).
 */
export interface InferenceResultJson {
  requestId: string;
  /** The client's own id for the request (its X-Request-Id), when it sent one; never a key. */
  correlationId?: string;
  task: Task;
  /**
   * The fused caption (task `caption`; may be empty when every expert failed); the region's description
   * (task `referring`); the change caption (task `change`).
   */
  caption?: string;
  /** The chosen answer (task `vqa`). */
  answer?: string;
  /** The question (task `vqa`). */
  question?: string;
  /** The question type the router found (task `vqa`). */
  questionType?: QuestionType;
  /** Every routed expert's output, in fusion order. */
  experts: ExpertOutputJson[];
  /** The experts the router chose, with the reason, in fusion order. */
  routed: RoutedExpertJson[];
  /** True when at least one routed expert's output is missing (failed, timed out or skipped). */
  degraded: boolean;
  /** Routed experts whose output is missing from the fusion. */
  missingExperts: ExpertId[];
  timings: ResultTimingsJson;
  /** Model pack that served the request. */
  packName: string;
  packVersion: string;
  /** Fusion strategy used (e.g. `ordered-dedup`, `priority`). */
  fusionStrategy: string;
  /** Task `classification`: the scene label. */
  label?: string;
  /** Task `classification`, when the expert scored the pack's labels: each one's probability, most likely first. */
  labelScores?: LabelScoreJson[];
  /** Task `grounding`: the boxes found, in percent of the image (empty when the text did not parse). */
  boxes?: PercentBoxJson[];
  /** Tasks `segmentation` and `change` (with a mask): the label grid the pixel expert wrote. */
  mask?: LabelGridJson;
  /** Tasks `grounding` and `segmentation`: the request's phrase. */
  query?: string;
  /** Task `referring`: the request's region. */
  box?: PercentBoxJson;
}

/**
 * A message on a router's inbox (RedisKeys.routerInbox): an expert's output as soon as it is ready, an
 * expert job's final failure (its BullMQ failure reason, formatExpertJobFailure's JSON or plain text), or
 * the result once the aggregator stored it (the result itself, so no extra read is needed).
 */
export type RouterInboxMessage =
  | { kind: 'partial'; requestId: string; output: ExpertOutputJson }
  | { kind: 'failure'; requestId: string; expertId: string; reason: string }
  | { kind: 'result'; requestId: string; result: InferenceResultJson };

const ms = z.number().finite().min(0);

export const inferenceResultSchema: z.ZodType<InferenceResultJson, z.ZodTypeDef, unknown> = z.object({
  requestId: z.string().min(1),
  correlationId: z.string().regex(CORRELATION_ID_PATTERN).optional(),
  task: z.enum(TASKS),
  caption: z.string().optional(),
  answer: z.string().optional(),
  question: z.string().optional(),
  questionType: z.enum(QUESTION_TYPES).optional(),
  experts: z.array(expertOutputSchema),
  routed: z.array(z.object({ expertId: z.string().min(1), reason: z.string() })),
  degraded: z.boolean(),
  missingExperts: z.array(z.string()),
  timings: z.object({ queueMs: ms, computeMs: ms, totalMs: ms }),
  packName: z.string(),
  packVersion: z.string(),
  fusionStrategy: z.string(),
  label: z.string().optional(),
  labelScores: z.array(z.object({ label: z.string(), value: z.number().min(0).max(1) })).optional(),
  boxes: z.array(percentBoxSchema).optional(),
  mask: z
    .object({
      width: z.number().int().positive(),
      height: z.number().int().positive(),
      labels: z.string(),
      classes: z.array(z.string()).min(1),
    })
    .refine((mask) => Buffer.byteLength(mask.labels, 'base64') === mask.width * mask.height, 'labels must hold width × height bytes')
    .optional(),
  query: z.string().optional(),
  box: percentBoxSchema.optional(),
});

export const routerInboxMessageSchema: z.ZodType<RouterInboxMessage, z.ZodTypeDef, unknown> = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('partial'), requestId: z.string().min(1), output: expertOutputSchema }),
    z.object({ kind: z.literal('failure'), requestId: z.string().min(1), expertId: z.string().min(1), reason: z.string() }),
    z.object({ kind: z.literal('result'), requestId: z.string().min(1), result: inferenceResultSchema }),
  ])
  .refine((m) => m.kind !== 'result' || m.requestId === m.result.requestId, {
    message: 'result.requestId differs from requestId',
    path: ['result', 'requestId'],
  });

/** Validates a stored or received result; throws ContractValidationError naming every bad field. */
export function parseInferenceResult(value: unknown): InferenceResultJson {
  return parseWith(inferenceResultSchema, 'InferenceResultJson', value);
}

/** Parses and validates a router inbox message (a JSON string or an already parsed value). */
export function parseRouterInboxMessage(message: unknown): RouterInboxMessage {
  let value = message;
  if (typeof message === 'string') {
    try {
      value = JSON.parse(message);
    } catch (error) {
      throw new ContractValidationError('RouterInboxMessage', [`(root): not JSON (${(error as Error).message})`]);
    }
  }
  return parseWith(routerInboxMessageSchema, 'RouterInboxMessage', value);
}
