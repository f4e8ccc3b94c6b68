import * as grpc from '@grpc/grpc-js';
import {
  REASON_METADATA_KEY,
  ROUTER_SERVICE_NAME,
  changeOutputToProto,
  fromProtoExpertOutput,
  fromProtoResult,
  generationParamsToProto,
  imageRefToProto,
  isExpertTask,
  percentBoxToProto,
  taskToProto,
  loadHealthPackage,
  loadRouterPackage,
  type InferenceResultJson,
  type ProtoHealthCheckResponse__Output,
  type ProtoHealthClient,
  type ProtoInferenceEvent__Output,
  type ProtoInferenceResult__Output,
  type ProtoListExpertsResponse__Output,
  type ProtoRouterClient,
} from '@rsmoe/contracts';
import { RouterCallError } from '../errors/router-status.mapping';
import type { AnswerCall, CaptionCall, ExpertListJson, InferCall, PartialListener, RouterCallContext, RouterHealth, RouterPort, TaskCall } from './router.port';

/** Metadata key carrying the request id on every call (STYLE.md 8: a request id from edge to edge). */
export const REQUEST_ID_METADATA_KEY = 'x-request-id';
/** Metadata key carrying the client's correlation id, when it sent one. */
export const CORRELATION_ID_METADATA_KEY = 'x-correlation-id';
/** Metadata key carrying the W3C trace context. */
export const TRACEPARENT_METADATA_KEY = 'traceparent';
/** Trailing metadata of a RESOURCE_EXHAUSTED refusal: when to come back, in ms. */
export const RETRY_AFTER_METADATA_KEY = 'retry-after-ms';

/** The router's `reason` trailing metadata (REFUSAL_REASONS), if it sent one. */
function reasonOf(error: grpc.ServiceError): string | undefined {
  const value = error.metadata?.get(REASON_METADATA_KEY)[0];
  return value === undefined ? undefined : String(value);
}

/** The router's `retry-after-ms` (a non-negative number), if it sent one. */
function retryAfterOf(error: grpc.ServiceError): number | undefined {
  const value = error.metadata?.get(RETRY_AFTER_METADATA_KEY)[0];
  const ms = value === undefined ? Number.NaN : Number(String(value));
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as grpc.ServiceError).code === 'number';
}

/** Every call's metadata: the request id, the client's correlation id and the trace context. */
function metadataOf(context: RouterCallContext): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(REQUEST_ID_METADATA_KEY, context.requestId);
  if (context.correlationId !== undefined) metadata.set(CORRELATION_ID_METADATA_KEY, context.correlationId);
  if (context.traceparent !== undefined) metadata.set(TRACEPARENT_METADATA_KEY, context.traceparent);
  return metadata;
}

/** A failed call as a RouterCallError: its status, details, and the router's retry delay and reason. */
function toRouterCallError(error: unknown): RouterCallError {
  return isServiceError(error)
    ? new RouterCallError(error.code, error.details, { cause: error, retryAfterMs: retryAfterOf(error), reason: reasonOf(error) })
    : new RouterCallError(grpc.status.UNKNOWN, String(error), { cause: error });
}

/** The fields every request message shares. */
function sharedFields(call: CaptionCall): object {
  return {
    requestId: call.requestId,
    images: call.images.map(imageRefToProto),
    params: generationParamsToProto(call.params),
    deadlineUnixMs: call.deadlineUnixMs,
    correlationId: call.correlationId ?? '',
  };
}

/** TaskRequest's own fields (Perform, and InferStream's `task`). */
function taskFields(call: TaskCall): object {
  return {
    task: taskToProto(call.task),
    query: call.query ?? '',
    ...(call.box ? { box: percentBoxToProto(call.box) } : {}),
    classes: call.classes ?? [],
    ...(call.changeOutput ? { changeOutput: changeOutputToProto(call.changeOutput) } : {}),
  };
}

/**
 * The router over gRPC (grpc-js): one client per process, deadline = the request's deadline,
 * `x-request-id` metadata on every call, cancellation when the HTTP client goes away, and every failure
 * turned into a RouterCallError (status mapping to HTTP happens once, in the exception filter).
 */
export class RouterClientAdapter implements RouterPort {
  private readonly client: ProtoRouterClient;
  private readonly health: ProtoHealthClient;

  constructor(
    /** `host:port` of the router. */
    readonly address: string,
    channelOptions: grpc.ChannelOptions = {},
  ) {
    const credentials = grpc.credentials.createInsecure();
    this.client = new (loadRouterPackage().rsmoe.v1.Router)(address, credentials, channelOptions);
    this.health = new (loadHealthPackage().grpc.health.v1.Health)(address, credentials, channelOptions);
  }

  caption(call: CaptionCall): Promise<InferenceResultJson> {
    return this.infer(this.client.Caption, call, {});
  }

  answer(call: AnswerCall): Promise<InferenceResultJson> {
    return this.infer(this.client.Answer, call, { question: call.question });
  }

  perform(call: TaskCall): Promise<InferenceResultJson> {
    return this.infer(this.client.Perform, call, taskFields(call));
  }

  /** One inference call: the fields every request message shares, plus the method's own. */
  private async infer(method: ProtoRouterClient['Caption' | 'Answer' | 'Perform'], call: CaptionCall, fields: object): Promise<InferenceResultJson> {
    const result = await this.unary<object, ProtoInferenceResult__Output>(
      method.bind(this.client) as UnaryMethod<object, ProtoInferenceResult__Output>,
      { ...sharedFields(call), ...fields },
      call,
    );
    return this.toResult(result);
  }

  /**
   * InferStream: the request in its oneof (caption, answer or task), each `partial` event to `onPartial` as it
   * arrives, the `result` event as the answer. The HTTP client going away cancels the call; a stream that
   * ends without a result is INTERNAL.
   */
  stream(call: InferCall, onPartial: PartialListener): Promise<InferenceResultJson> {
    const shared = sharedFields(call);
    const request =
      call.task === 'caption' ? { caption: shared } : call.task === 'vqa' ? { answer: { ...shared, question: call.question } } : { task: { ...shared, ...taskFields(call) } };
    return new Promise<InferenceResultJson>((resolve, reject) => {
      if (call.signal?.aborted) {
        reject(new RouterCallError(grpc.status.CANCELLED, 'the client went away'));
        return;
      }
      const stream = this.client.InferStream(request, metadataOf(call), { deadline: new Date(call.deadlineUnixMs) });
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        call.signal?.removeEventListener('abort', onAbort);
        outcome();
      };
      const onAbort = (): void => stream.cancel();
      let result: ProtoInferenceResult__Output | undefined;
      stream.on('data', (event: ProtoInferenceEvent__Output) => {
        if (settled) return;
        try {
          if (event.partial) onPartial(fromProtoExpertOutput(event.partial));
          else if (event.result) result = event.result;
        } catch (error) {
          settle(() => reject(new RouterCallError(grpc.status.INTERNAL, `the router sent an invalid event: ${(error as Error).message}`, { cause: error })));
          stream.cancel();
        }
      });
      stream.on('error', (error: unknown) => settle(() => reject(toRouterCallError(error))));
      stream.on('end', () =>
        settle(() => {
          if (result === undefined) reject(new RouterCallError(grpc.status.INTERNAL, 'the router’s stream ended without a result'));
          else {
            try {
              resolve(this.toResult(result));
            } catch (error) {
              reject(error);
            }
          }
        }),
      );
      call.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async listExperts(call: RouterCallContext): Promise<ExpertListJson> {
    const response = await this.unary<object, ProtoListExpertsResponse__Output>(
      this.client.ListExperts.bind(this.client) as UnaryMethod<object, ProtoListExpertsResponse__Output>,
      {},
      call,
    );
    return {
      packName: response.packName,
      packVersion: response.packVersion,
      experts: response.experts.map((expert) => ({
        id: expert.id,
        description: expert.description,
        aspects: [...expert.aspects],
        questionTypes: [...expert.questionTypes],
        model: expert.model,
        queue: expert.queue,
        tasks: expert.tasks.filter(isExpertTask),
        ...(expert.granularity ? { granularity: expert.granularity } : {}),
        ...(expert.liveWorkers !== undefined ? { liveWorkers: expert.liveWorkers } : {}),
        ...(expert.waitingJobs !== undefined ? { waitingJobs: expert.waitingJobs } : {}),
      })),
    };
  }

  /** Asks `grpc.health.v1.Health/Check` for the router service, falling back to the server-wide "" entry. */
  async checkHealth(deadlineUnixMs: number): Promise<RouterHealth> {
    const check = this.health.Check.bind(this.health) as UnaryMethod<object, ProtoHealthCheckResponse__Output>;
    const context = { requestId: 'health-check', deadlineUnixMs };
    try {
      let response: ProtoHealthCheckResponse__Output;
      try {
        response = await this.unary(check, { service: ROUTER_SERVICE_NAME }, context);
      } catch (error) {
        if (!(error instanceof RouterCallError) || error.grpcCode !== grpc.status.NOT_FOUND) throw error;
        response = await this.unary(check, { service: '' }, context);
      }
      return { serving: response.status === 'SERVING', status: String(response.status) };
    } catch (error) {
      const status =
        error instanceof RouterCallError
          ? `${grpc.status[error.grpcCode] ?? error.grpcCode}: ${error.details.replace(/\s*Resolution note:\s*$/, '')}`
          : String(error);
      return { serving: false, status };
    }
  }

  close(): void {
    this.client.close();
    this.health.close();
  }

  private toResult(result: ProtoInferenceResult__Output): InferenceResultJson {
    try {
      return fromProtoResult(result);
    } catch (error) {
      throw new RouterCallError(grpc.status.INTERNAL, `the router sent an invalid result: ${(error as Error).message}`, { cause: error });
    }
  }

  private unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, context: RouterCallContext): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (context.signal?.aborted) {
        reject(new RouterCallError(grpc.status.CANCELLED, 'the client went away'));
        return;
      }
      const onAbort = (): void => call.cancel();
      const call = method(request, metadataOf(context), { deadline: new Date(context.deadlineUnixMs) }, (error, response) => {
        context.signal?.removeEventListener('abort', onAbort);
        if (error) {
          reject(toRouterCallError(error));
        } else if (response === undefined) {
          reject(new RouterCallError(grpc.status.INTERNAL, 'empty response'));
        } else {
          resolve(response);
        }
      });
      context.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
