import { Controller, HttpCode, Inject, Post, Req, Res, StreamableFile } from '@nestjs/common';
import type { InferenceResultJson, Task } from '@rsmoe/contracts';
import type { HttpRequest, HttpResponse } from '../http/http-types';
import { isMultipart, readMultipartForm, type MultipartLimits } from '../http/multipart-form';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import { errorBodyOf, gatewayErrorOf } from '../errors/error-response.filter';
import { EVENT_STREAM_HEADERS, openEventStream, partialEvent, sseFrame } from '../streaming/event-stream';
import { apiKeyOf } from '../http/api-key.middleware';
import { requestContext } from '../http/request-context.middleware';
import type { RawInferenceInput } from '../intake/image-intake.service';
import type { TaskAnswer } from '../tasks/task-answer';
import { MULTIPART_LIMITS } from '../tokens';
import { InferenceService, type IdempotentReplay, type InferenceContext } from './inference.service';

/** Header a client may use instead of (or with) the `timeoutMs` field; the smaller one wins. */
export const TIMEOUT_HEADER = 'x-request-timeout-ms';

/** File fields of a multipart request: one image, or a change request's pair. */
const IMAGE_FILE_FIELDS = ['image'] as const;
const PAIR_FILE_FIELDS = ['before', 'after'] as const;

/** A fresh answer, a 202, or (an `Idempotency-Key` replay) the body an earlier request answered. */
type Answer = Promise<InferenceResultJson | TaskAnswer | PendingAnswer | unknown>;

/**
 * The inference endpoints: multipart (file field `image`; `before` and `after` for changes) or JSON (base64 /
 * data URL). Captions and answers are RS-MoE's; classify, grounding, referring, segmentation and changes
 * are RSUniVLM's tasks, each routed to its granularity expert.
 */
@Controller('v1')
export class InferenceController {
  constructor(
    @Inject(InferenceService) private readonly inference: InferenceService,
    @Inject(MULTIPART_LIMITS) private readonly multipartLimits: MultipartLimits,
  ) {}

  @Post('captions')
  @HttpCode(200)
  caption(@Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Answer {
    return this.handle('caption', req, res);
  }

  @Post('vqa')
  @HttpCode(200)
  answer(@Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Answer {
    return this.handle('vqa', req, res);
  }

  @Post('classify')
  @HttpCode(200)
  classify(@Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Answer {
    return this.handle('classification', req, res);
  }

  @Post('grounding')
  @HttpCode(200)
  grounding(@Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Answer {
    return this.handle('grounding', req, res);
  }

  @Post('referring')
  @HttpCode(200)
  referring(@Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Answer {
    return this.handle('referring', req, res);
  }

  @Post('segmentation')
  @HttpCode(200)
  segmentation(@Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Answer {
    return this.handle('segmentation', req, res);
  }

  @Post('changes')
  @HttpCode(200)
  changes(@Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Answer {
    return this.handle('change', req, res);
  }

  private async handle(task: Task, req: HttpRequest, res: HttpResponse): Promise<InferenceResultJson | TaskAnswer | PendingAnswer | unknown> {
    const key = apiKeyOf(req);
    // The middleware refused this before the body was read; this catches a path it did not map to the task.
    if (key?.tasks !== undefined && !key.tasks.includes(task)) throw new GatewayError(403, ERROR_CODES.forbidden, `API key "${key.name}" may not run ${task} requests`);
    const header = req.headers[TIMEOUT_HEADER];
    const input: RawInferenceInput = {
      ...(await this.readBody(task, req)),
      ...(typeof header === 'string' ? { timeoutHeader: header } : {}),
    };
    const context = contextOf(req, res);
    if (!prefersAsync(req) && acceptsEventStream(req)) return this.stream(task, input, context, res);
    if (!prefersAsync(req)) return answerOrReplay(await this.inference.run(task, input, context), res);
    const replay = await this.inference.submit(task, input, context);
    if (replay) return answerOrReplay(replay, res);
    const location = `/v1/requests/${context.requestId}`;
    res.status(202);
    res.setHeader('Location', location);
    res.setHeader('Preference-Applied', 'respond-async');
    return { requestId: context.requestId, status: 'pending', location };
  }

  /** A multipart body read here (file field `image`; `before` and `after` for changes), or the JSON body parsed. */
  private async readBody(task: Task, req: HttpRequest): Promise<Omit<RawInferenceInput, 'timeoutHeader'>> {
    if (!isMultipart(req)) return { encoding: 'json', body: req.body };
    const form = await readMultipartForm(req, task === 'change' ? PAIR_FILE_FIELDS : IMAGE_FILE_FIELDS, this.multipartLimits);
    if (task !== 'change') {
      const file = form.files.get('image');
      return { encoding: 'multipart', body: form.fields, ...(file ? { file } : {}) };
    }
    const [before, after] = PAIR_FILE_FIELDS.map((name) => form.files.get(name));
    return { encoding: 'multipart', body: form.fields, files: { ...(before ? { before } : {}), ...(after ? { after } : {}) } };
  }

  /**
   * `Accept: text/event-stream`: server-sent events, `event: partial` with `{expert, partial}` as each expert
   * finishes, then `event: result` with the body the JSON answer would have. A failure before the first
   * event is the usual JSON error with its status; after it, an `event: error` with the error body ends the
   * stream. A client that goes away cancels the request (its signal) and what it stored is erased.
   */
  private async stream(task: Task, input: RawInferenceInput, context: InferenceContext, res: HttpResponse): Promise<StreamableFile | unknown> {
    try {
      const events = await openEventStream(
        async (sink) => {
          const answer = await this.inference.run(task, input, context, (output) => sink.send(sseFrame(partialEvent(output), 'partial')));
          if (isReplay(answer)) {
            if (answer.status !== 200) throw new ReplayedRefusal(answer);
            res.setHeader('Idempotent-Replayed', 'true');
            sink.send(sseFrame(answer.body, 'result'));
          } else sink.send(sseFrame(answer, 'result'));
        },
        (error) => sseFrame(errorBodyOf(gatewayErrorOf(error), context.requestId), 'error'),
      );
      for (const [name, value] of Object.entries(EVENT_STREAM_HEADERS)) res.setHeader(name, value);
      return new StreamableFile(events, { type: EVENT_STREAM_HEADERS['Content-Type'] });
    } catch (error) {
      if (error instanceof ReplayedRefusal) return answerOrReplay(error.replay, res);
      throw error;
    }
  }
}

function isReplay(answer: unknown): answer is IdempotentReplay {
  return typeof answer === 'object' && answer !== null && (answer as IdempotentReplay).kind === 'replay';
}

/** An `Idempotency-Key` replay of an error, found before a stream opened: answered as the JSON it was. */
class ReplayedRefusal extends Error {
  constructor(readonly replay: IdempotentReplay) {
    super('replayed refusal');
  }
}

/** `Accept: text/event-stream` (a client that asks for server-sent events; JSON stays the default). */
function acceptsEventStream(req: HttpRequest): boolean {
  return /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(String(req.headers.accept ?? ''));
}

/** The 202 answer of a request submitted with `Prefer: respond-async`. */
export interface PendingAnswer {
  requestId: string;
  status: 'pending';
  /** Where the answer will be: GET it until it is no longer 202. */
  location: string;
}

/** An answer given again for an `Idempotency-Key` keeps its status; `Idempotent-Replayed` says it is one. */
function answerOrReplay<Answer>(answer: Answer | IdempotentReplay, res: HttpResponse): Answer | unknown {
  if (typeof answer !== 'object' || answer === null || (answer as IdempotentReplay).kind !== 'replay') return answer;
  const replay = answer as IdempotentReplay;
  res.status(replay.status);
  res.setHeader('Idempotent-Replayed', 'true');
  return replay.body;
}

/** `Idempotency-Key`: 1-255 printable ASCII characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function idempotencyKeyOf(req: HttpRequest): string | undefined {
  const header = req.headers['idempotency-key'];
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header[0] : header;
  if (!IDEMPOTENCY_KEY.test(value)) throw new GatewayError(400, ERROR_CODES.invalidIdempotencyKey, 'Idempotency-Key must be 1-255 printable ASCII characters without spaces');
  return value;
}

/** RFC 7240: `Prefer: respond-async` (among other preferences, any case). */
function prefersAsync(req: HttpRequest): boolean {
  const header = req.headers.prefer;
  const values = Array.isArray(header) ? header.join(',') : (header ?? '');
  return values.split(',').some((preference) => preference.split(';')[0].trim().toLowerCase() === 'respond-async');
}

/**
 * Who is asking, for InferenceService: the request's ids and arrival, its API key, its `Idempotency-Key`,
 * and a signal aborted when the client goes away before the answer.
 */
export function contextOf(req: HttpRequest, res: HttpResponse): InferenceContext {
  const { requestId, correlationId, traceparent, receivedAtMs } = requestContext(req);
  const abort = new AbortController();
  // The client went away before the answer: cancel the router call instead of computing for nobody.
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const ownerKeyId = apiKeyOf(req)?.id;
  const idempotencyKey = idempotencyKeyOf(req);
  return {
    requestId,
    ...(correlationId !== undefined ? { correlationId } : {}),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    ...(ownerKeyId !== undefined ? { ownerKeyId } : {}),
    traceparent,
    receivedAtMs,
    signal: abort.signal,
  };
}
