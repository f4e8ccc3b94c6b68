import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import {
  ContractValidationError,
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
  return {
    Caption: timed('Caption', observe, unary((message: ProtoInferenceCall, call) => toInferenceRequest('caption', message, call))),
    Answer: timed('Answer', observe, unary((message: ProtoInferenceCall, call) => toInferenceRequest('vqa', message, call))),
    Perform: timed('Perform', observe, unary(toTaskRequest)),
    CaptionStream: (call) => {
      const started = performance.now();
      const finish = (code: grpc.status): void => observe('CaptionStream', grpc.status[code] ?? 'UNKNOWN', (performance.now() - started) / 1000);
      let request: InferenceRequest;
      try {
        request = toInferenceRequest('caption', call.request as ProtoInferenceCall, call);
      } catch (error) {
        const serviceError = toServiceError(error, logger, call.request.requestId);
        finish(serviceError.code ?? grpc.status.UNKNOWN);
        call.destroy(serviceError as grpc.ServiceError);
        return;
      }
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
            call.destroy(serviceError as grpc.ServiceError);
          },
        );
    },
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
