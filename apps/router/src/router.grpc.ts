import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import {
  ContractValidationError,
  PRIORITY_METADATA_KEY,
  REASON_METADATA_KEY,
  ROUTER_SERVICE_NAME,
  isTraceparent,
  changeOutputFromProto,
  generationParamsFromProto,
  imageRefsFromProto,
  percentBoxFromProto,
  taskFromProto,
  toListExpertsResponse,
  toProtoExpertOutput,
  toProtoResult,
  type ProtoHealthHandlers,
  type ProtoInferRequest__Output,
  type ProtoInferenceEvent,
  type ProtoRouterHandlers,
  type ProtoTaskRequest__Output,
  type Task,
} from '@rsmoe/contracts';
import type { Logger } from '@rsmoe/observability';
import { RouterRequestError, type InferenceRequest, type RouterService } from './router.service';

const STATUS_OF_KIND: Record<RouterRequestError['kind'], grpc.status> = {
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  not_found: grpc.status.NOT_FOUND,
  deadline_exceeded: grpc.status.DEADLINE_EXCEEDED,
  failed_precondition: grpc.status.FAILED_PRECONDITION,
  unavailable: grpc.status.UNAVAILABLE,
  resource_exhausted: grpc.status.RESOURCE_EXHAUSTED,
  cancelled: grpc.status.CANCELLED,
};

/** A signal that fires when the call is cancelled by its client or its deadline passes. */
function signalOf(call: { on(event: 'cancelled', listener: () => void): unknown; cancelled: boolean }): AbortSignal {
  const controller = new AbortController();
  if (call.cancelled) controller.abort();
  else call.on('cancelled', () => controller.abort());
  return controller.signal;
}

/** Trailing metadata of a RESOURCE_EXHAUSTED answer: when to retry, in ms (the gateway's Retry-After). */
export const RETRY_AFTER_METADATA = 'retry-after-ms';

/**
 * The one mapping from errors to gRPC statuses; unexpected errors are logged and become INTERNAL. A refusal
 * for load carries `retry-after-ms` in its trailing metadata; a refusal with a reason (no live expert, a
 * missing image) carries `reason` (REFUSAL_REASONS).
 */
function toServiceError(error: unknown, logger: Logger, requestId: string): Partial<grpc.ServiceError> {
  if (error instanceof RouterRequestError) {
    const serviceError: Partial<grpc.ServiceError> = { code: STATUS_OF_KIND[error.kind], details: error.message };
    if (error.retryAfterMs !== undefined || error.reason !== undefined) {
      const metadata = new grpc.Metadata();
      if (error.retryAfterMs !== undefined) metadata.set(RETRY_AFTER_METADATA, String(error.retryAfterMs));
      if (error.reason !== undefined) metadata.set(REASON_METADATA_KEY, error.reason);
      serviceError.metadata = metadata;
    }
    return serviceError;
  }
  if (error instanceof ContractValidationError) return { code: grpc.status.INVALID_ARGUMENT, details: error.message };
  logger.error('request failed', { requestId, error });
  return { code: grpc.status.INTERNAL, details: 'internal error in the router' };
}

/** What every server call offers, unary or streaming. */
type SurfaceCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline'>;

interface ProtoInferenceCall {
  requestId: string;
  images: Parameters<typeof imageRefsFromProto>[0];
  params: Parameters<typeof generationParamsFromProto>[0];
  deadlineUnixMs: string;
  question?: string;
  correlationId?: string;
}

/** gRPC metadata key of the W3C trace context. */
const TRACEPARENT_METADATA = 'traceparent';

/** The earlier of the request's own deadline and the gRPC call's deadline. */
function effectiveDeadline(requested: string, call: SurfaceCall): number | undefined {
  const own = Number(requested) || undefined;
  const callDeadline = call.getDeadline();
  const grpcDeadline = callDeadline instanceof Date ? callDeadline.getTime() : Number.isFinite(callDeadline) ? Number(callDeadline) : undefined;
  if (own && grpcDeadline) return Math.min(own, grpcDeadline);
  return own ?? grpcDeadline;
}

function toInferenceRequest(task: Task, message: ProtoInferenceCall, call: SurfaceCall): InferenceRequest {
  const fromMetadata = call.metadata.get('x-request-id')[0];
  const traceparent = call.metadata.get(TRACEPARENT_METADATA)[0];
  const bulk = call.metadata.get(PRIORITY_METADATA_KEY)[0] === 'bulk';
  return {
    requestId: message.requestId || (typeof fromMetadata === 'string' ? fromMetadata : '') || randomUUID().replaceAll('-', ''),
    task,
    // The count against MAX_IMAGES_PER_REQUEST is the service's check; here only the hard limit and each reference.
    images: imageRefsFromProto(message.images),
    question: message.question,
    params: generationParamsFromProto(message.params),
    deadlineUnixMs: effectiveDeadline(message.deadlineUnixMs, call),
    ...(message.correlationId ? { correlationId: message.correlationId } : {}),
    // An invalid traceparent is ignored, as W3C trace context says: the trace restarts, the request goes on.
    ...(isTraceparent(traceparent) ? { traceparent } : {}),
    // A scene's tiles: BullMQ priority > 0 and the bulk admission budget (MAX_BULK_WAITING_PER_EXPERT).
    ...(bulk ? { priority: 'bulk' as const } : {}),
  };
}

/** Tasks Perform serves; captions and answers have their own calls. */
const PERFORM_TASKS: readonly Task[] = ['classification', 'grounding', 'referring', 'segmentation', 'change'];

function toTaskRequest(message: ProtoTaskRequest__Output, call: SurfaceCall): InferenceRequest {
  const task = taskFromProto(message.task);
  if (!PERFORM_TASKS.includes(task)) {
    throw new ContractValidationError('TaskRequest', [`task: Perform serves ${PERFORM_TASKS.join(', ')}; ${task} has its own call`]);
  }
  const base = toInferenceRequest(task, { ...message, question: undefined } as unknown as ProtoInferenceCall, call);
  return {
    ...base,
    ...(message.query ? { query: message.query } : {}),
    ...(task === 'referring' ? { box: percentBoxFromProto(message.box) } : {}),
    ...(message.classes.length > 0 ? { classes: [...message.classes] } : {}),
    ...(task === 'change' ? { changeOutput: changeOutputFromProto(message.changeOutput) } : {}),
  };
}

/** InferStream's request: the caption, answer or task message its oneof holds, read as its unary call reads it. */
function toAnyRequest(message: ProtoInferRequest__Output, call: SurfaceCall): InferenceRequest {
  switch (message.request) {
    case 'caption':
      return toInferenceRequest('caption', message.caption as unknown as ProtoInferenceCall, call);
    case 'answer':
      return toInferenceRequest('vqa', message.answer as unknown as ProtoInferenceCall, call);
    case 'task':
      if (message.task) return toTaskRequest(message.task, call);
  }
  throw new ContractValidationError('InferRequest', ['request: one of caption, answer or task is required']);
}

/** The request id a message carries, itself or in InferRequest's oneof (for the log of a refused call). */
function requestIdOf(message: object): string {
  const { requestId, caption, answer, task } = message as { requestId?: string } & Partial<Record<'caption' | 'answer' | 'task', { requestId?: string } | null>>;
  return requestId ?? caption?.requestId ?? answer?.requestId ?? task?.requestId ?? '';
}

/**
 * Ends a server stream with an error status. Emitting 'error' is what grpc-js turns into the status (with
 * its trailing metadata); `destroy(error)` would end the stream before any status is sent, leaving the
 * client waiting until its deadline.
 */
function fail(call: grpc.ServerWritableStream<unknown, unknown>, error: Partial<grpc.ServiceError>): void {
  call.emit('error', error);
}

/** Told when a call ends: method name, status code name (OK, INVALID_ARGUMENT, ...) and duration. */
export type CallObserver = (method: string, code: string, seconds: number) => void;

function timed<Call, Callback extends grpc.sendUnaryData<never>>(
  method: string,
  observe: CallObserver,
  handler: (call: Call, callback: Callback) => void,
): (call: Call, callback: Callback) => void {
  return (call, callback) => {
    const started = performance.now();
    const done = ((error: Partial<grpc.ServiceError> | null, value?: unknown) => {
      observe(method, grpc.status[error?.code ?? grpc.status.OK] ?? 'UNKNOWN', (performance.now() - started) / 1000);
      (callback as (error: unknown, value?: unknown) => void)(error, value);
    }) as Callback;
    handler(call, done);
  };
}

/** What ListExperts adds per expert: its live workers and interactive backlog at the last poll, when known. */
export type ExpertLiveness = (expertId: string) => { liveWorkers: number; waitingJobs: number } | undefined;

export function createRouterHandlers(
  service: RouterService,
  logger: Logger,
  observe: CallObserver = () => undefined,
  liveness: ExpertLiveness = () => undefined,
): ProtoRouterHandlers {
  const unary =
    <Message extends { requestId: string }>(toRequest: (message: Message, call: SurfaceCall) => InferenceRequest) =>
    (call: grpc.ServerUnaryCall<Message, unknown>, callback: grpc.sendUnaryData<ReturnType<typeof toProtoResult>>): void => {
      let request: InferenceRequest;
      try {
        request = toRequest(call.request, call);
      } catch (error) {
        callback(toServiceError(error, logger, call.request.requestId));
        return;
      }
      logger.debug('request received', { requestId: request.requestId, task: request.task });
      service.infer(request, undefined, signalOf(call)).then(
        (result) => {
          logger.debug('answering', { requestId: request.requestId, degraded: result.degraded });
          callback(null, toProtoResult(result));
        },
        (error: unknown) => callback(toServiceError(error, logger, request.requestId)),
      );
    };
  /**
   * A streaming call: one `partial` event per expert report as it arrives, then the `result`. The call's
   * cancellation reaches the service as its signal (which withdraws the request's queued jobs).
   */
  const streamed =
    <Message extends object>(method: string, toRequest: (message: Message, call: SurfaceCall) => InferenceRequest) =>
    (call: grpc.ServerWritableStream<Message, ProtoInferenceEvent>): void => {
      const started = performance.now();
      const finish = (code: grpc.status): void => observe(method, grpc.status[code] ?? 'UNKNOWN', (performance.now() - started) / 1000);
      let request: InferenceRequest;
      try {
        request = toRequest(call.request, call);
      } catch (error) {
        const serviceError = toServiceError(error, logger, requestIdOf(call.request));
        finish(serviceError.code ?? grpc.status.UNKNOWN);
        fail(call, serviceError);
        return;
      }
      logger.debug('streaming request received', { requestId: request.requestId, task: request.task });
      service
        .infer(
          request,
          (partial) => {
            if (!call.cancelled) call.write({ partial: toProtoExpertOutput(partial) });
          },
          signalOf(call),
        )
        .then(
          (result) => {
            call.write({ result: toProtoResult(result) });
            call.end();
            finish(grpc.status.OK);
          },
          (error: unknown) => {
            const serviceError = toServiceError(error, logger, request.requestId);
            finish(serviceError.code ?? grpc.status.UNKNOWN);
            fail(call, serviceError);
          },
        );
    };
  return {
    Caption: timed('Caption', observe, unary((message: ProtoInferenceCall, call) => toInferenceRequest('caption', message, call))),
    Answer: timed('Answer', observe, unary((message: ProtoInferenceCall, call) => toInferenceRequest('vqa', message, call))),
    Perform: timed('Perform', observe, unary(toTaskRequest)),
    CaptionStream: streamed('CaptionStream', (message: ProtoInferenceCall, call) => toInferenceRequest('caption', message, call)),
    InferStream: streamed('InferStream', toAnyRequest),
    ListExperts: timed('ListExperts', observe, (_call: unknown, callback: grpc.sendUnaryData<ReturnType<typeof toListExpertsResponse>>) =>
      callback(null, toListExpertsResponse(service.manifest, liveness)),
    ),
  } as ProtoRouterHandlers;
}

/** grpc.health.v1: SERVING once the pack is loaded and the queues are reachable. */
export function createHealthHandlers(isServing: () => boolean): ProtoHealthHandlers {
  const statusOf = (service: string): 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' => {
    if (service !== '' && service !== ROUTER_SERVICE_NAME) return 'SERVICE_UNKNOWN';
    return isServing() ? 'SERVING' : 'NOT_SERVING';
  };
  return {
    Check: (call, callback) => {
      const status = statusOf(call.request.service);
      if (status === 'SERVICE_UNKNOWN') callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
      else callback(null, { status });
    },
    Watch: (call) => {
      call.write({ status: statusOf(call.request.service) });
    },
  };
}
