import type { ChangeOutput } from '@rsmoe/contracts';
import { z } from 'zod';
import { GatewayRequestError, gatewayHeaders, refusalMessage, unansweredError, type GatewayAccess } from './gateway-access';

const corners = z.tuple([z.number(), z.number(), z.number(), z.number()]);

const boxSchema = z.object({ phrase: z.string().optional(), boxPx: corners, boxNorm: corners });

/**
 * The fields of the gateway's task answers (apps/gateway/src/tasks/task-answer.ts, TaskAnswer) that the CLI
 * reads; each one is optional because which ones come depends on the task and on degraded answers. The
 * command spec checks at compile time that the gateway's TaskAnswer still fits this shape.
 */
export const taskAnswerSchema = z.object({
  requestId: z.string(),
  task: z.string(),
  degraded: z.boolean().optional(),
  missingExperts: z.array(z.string()).optional(),
  timings: z.object({ totalMs: z.number() }).partial().optional(),
  packName: z.string().optional(),
  packVersion: z.string().optional(),
  /** Classification: the scene label. */
  label: z.string().optional(),
  /** Referring: the region's description; change: the change caption. */
  caption: z.string().optional(),
  /** Grounding and segmentation: the phrase. */
  query: z.string().optional(),
  /** Grounding: the boxes found. */
  boxes: z.array(boxSchema).optional(),
  /** Referring: the region asked about. */
  box: boxSchema.optional(),
  /** Segmentation and change: the label mask at the image's size. */
  mask: z
    .object({
      width: z.number().int().positive(),
      height: z.number().int().positive(),
      /** Single-channel 8-bit PNG, base64: pixel = index into `classes` (255 = ignore). */
      png: z.string(),
      classes: z.array(z.object({ index: z.number().int(), name: z.string(), areaFraction: z.number() })),
    })
    .optional(),
  /** Change with a mask: changed pixels ÷ all pixels. */
  changedFraction: z.number().optional(),
});

export type TaskAnswerView = z.infer<typeof taskAnswerSchema>;

/** A task answer: the fields the CLI reads, and the whole JSON as the gateway sent it. */
export interface TaskReply {
  answer: TaskAnswerView;
  raw: Record<string, unknown>;
}

/** An image to send: its bytes and the file name of its multipart part. */
export interface ImageUpload {
  bytes: Uint8Array;
  filename: string;
}

export interface TaskClientOptions extends GatewayAccess {
  /** Per-request timeout in ms. Default 120000. */
  timeoutMs?: number;
}

/**
 * Talks to the gateway's task endpoints (`/v1/classify`, `/v1/grounding`, `/v1/referring`,
 * `/v1/segmentation`, `/v1/changes`; multipart/form-data) with Node's fetch: one attempt, as `rsmoe caption`
 * makes. A refusal or an unreadable answer is a GatewayRequestError whose message ends with the request id.
 */
export class GatewayTaskClient {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly keySent: boolean;
  private readonly timeoutMs: number;

  constructor(options: TaskClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.headers = gatewayHeaders(options);
    this.keySent = options.apiKey !== undefined;
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  classify(image: ImageUpload): Promise<TaskReply> {
    return this.post('/v1/classify', { image }, {});
  }

  ground(image: ImageUpload, query: string): Promise<TaskReply> {
    return this.post('/v1/grounding', { image }, { query });
  }

  /** `box`: x1, y1, x2, y2 in `units` (px: pixels, continuous coordinates; norm: [0, 1] of the image). */
  refer(image: ImageUpload, box: readonly number[], units: 'px' | 'norm'): Promise<TaskReply> {
    return this.post('/v1/referring', { image }, { box: box.join(','), units });
  }

  /** Class names, a phrase, or both (the gateway needs at least one). */
  segment(image: ImageUpload, request: { classes?: readonly string[]; query?: string }): Promise<TaskReply> {
    return this.post(
      '/v1/segmentation',
      { image },
      { ...(request.classes !== undefined ? { classes: request.classes.join(',') } : {}), ...(request.query !== undefined ? { query: request.query } : {}) },
    );
  }

  changes(before: ImageUpload, after: ImageUpload, output: ChangeOutput): Promise<TaskReply> {
    return this.post('/v1/changes', { before, after }, { output });
  }

  private async post(path: string, files: Record<string, ImageUpload>, fields: Record<string, string>): Promise<TaskReply> {
    const form = new FormData();
    for (const [name, { bytes, filename }] of Object.entries(files)) form.append(name, new Blob([bytes]), filename);
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, { method: 'POST', body: form, headers: this.headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw unansweredError(this.base, error, this.timeoutMs);
    }
    const body = await response.text();
    const json = parseObject(body);
    const headerId = response.headers.get('x-request-id') ?? undefined;
    if (!response.ok) {
      const error = (json?.error ?? {}) as { code?: unknown; message?: unknown; requestId?: unknown };
      const requestId = typeof error.requestId === 'string' ? error.requestId : headerId;
      const message = typeof error.message === 'string' ? error.message : `HTTP ${response.status}: ${body.slice(0, 200).replace(/\s+/g, ' ')}`;
      throw new GatewayRequestError(
        response.status,
        typeof error.code === 'string' ? error.code : `http_${response.status}`,
        refusalMessage(response.status, withRequestId(message, requestId), this.keySent),
        requestId,
      );
    }
    const parsed = taskAnswerSchema.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
      throw new GatewayRequestError(response.status, 'bad_response', withRequestId(`the answer of ${path} is not a task answer: ${problems}`, headerId), headerId);
    }
    return { answer: parsed.data, raw: json! };
  }
}

function withRequestId(message: string, requestId: string | undefined): string {
  return requestId === undefined ? message : `${message} (request ${requestId})`;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
