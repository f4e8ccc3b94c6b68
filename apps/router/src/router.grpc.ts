import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  ContractValidationError,
  ROUTER_SERVICE_NAME,
  generationParamsFromProto,
  imageRefFromProto,
  toListExpertsResponse,
  toProtoExpertOutput,
  toProtoResult,
  type ProtoHealthHandlers,
  type ProtoRouterHandlers,
  type Task,
} from '@rsmoe/contracts';
import type { Logger } from '@rsmoe/observability';
import { RouterRequestError, type InferenceRequest, type RouterService } from './router.service';

const STATUS_OF_KIND: Record<RouterRequestError['kind'], grpc.status> = {
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  not_found: grpc.status.NOT_FOUND,
  deadline_exceeded: grpc.status.DEADLINE_EXCEEDED,
  failed_precondition: grpc.status.FAILED_PRECONDITION,
};

/** The one mapping from errors to gRPC statuses; unexpected errors are logged and become INTERNAL. */
function toServiceError(error: unknown, logger: Logger, requestId: string): Partial<grpc.ServiceError> {
  if (error instanceof RouterRequestError) return { code: STATUS_OF_KIND[error.kind], details: error.message };
  if (error instanceof ContractValidationError) return { code: grpc.status.INVALID_ARGUMENT, details: error.message };
  logger.error('request failed', { requestId, error });
  return { code: grpc.status.INTERNAL, details: 'internal error in the router' };
}

/** What every server call offers, unary or streaming. */
type SurfaceCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getDeadline'>;

interface ProtoInferenceCall {
  requestId: string;
  image: Parameters<typeof imageRefFromProto>[0];
  params: Parameters<typeof generationParamsFromProto>[0];
  deadlineUnixMs: string;
  question?: string;
}

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
  return {
    requestId: message.requestId || (typeof fromMetadata === 'string' ? fromMetadata : '') || randomUUID().replaceAll('-', ''),
    task,
    image: imageRefFromProto(message.image),
    question: message.question,
    params: generationParamsFromProto(message.params),
    deadlineUnixMs: effectiveDeadline(message.deadlineUnixMs, call),
  };
}

export function createRouterHandlers(service: RouterService, logger: Logger): ProtoRouterHandlers {
  const unary =
    (task: Task) =>
    (call: grpc.ServerUnaryCall<ProtoInferenceCall, unknown>, callback: grpc.sendUnaryData<ReturnType<typeof toProtoResult>>): void => {
      let request: InferenceRequest;
      try {
        request = toInferenceRequest(task, call.request, call);
      } catch (error) {
        callback(toServiceError(error, logger, call.request.requestId));
        return;
      }
      logger.debug('request received', { requestId: request.requestId, task });
      service.infer(request).then(
        (result) => {
          logger.debug('answering', { requestId: request.requestId, degraded: result.degraded });
          callback(null, toProtoResult(result));
        },
        (error: unknown) => callback(toServiceError(error, logger, request.requestId)),
      );
    };
  return {
    Caption: unary('caption'),
    Answer: unary('vqa'),
    CaptionStream: (call) => {
      let request: InferenceRequest;
      try {
        request = toInferenceRequest('caption', call.request as ProtoInferenceCall, call);
      } catch (error) {
        call.destroy(toServiceError(error, logger, call.request.requestId) as grpc.ServiceError);
        return;
      }
      service
        .infer(request, (partial) => {
          if (!call.cancelled) call.write({ partial: toProtoExpertOutput(partial) });
        })
        .then(
          (result) => {
            call.write({ result: toProtoResult(result) });
            call.end();
          },
          (error: unknown) => call.destroy(toServiceError(error, logger, request.requestId) as grpc.ServiceError),
        );
    },
    ListExperts: (_call, callback) => callback(null, toListExpertsResponse(service.manifest)),
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
