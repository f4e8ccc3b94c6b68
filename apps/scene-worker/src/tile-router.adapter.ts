import * as grpc from '@grpc/grpc-js';
import {
  PRIORITY_METADATA_KEY,
  REASON_METADATA_KEY,
  fromProtoResult,
  generationParamsToProto,
  imageRefToProto,
  loadRouterPackage,
  taskToProto,
  type ImageRefJson,
  type InferenceResultJson,
  type ProtoInferenceResult__Output,
  type ProtoRouterClient,
  type Task,
} from '@rsmoe/contracts';

/** One tile request: the stored tile image, the task and its input. Always sent at bulk priority. */
export interface TileCall {
  requestId: string;
  image: ImageRefJson;
  task: Exclude<Task, 'vqa' | 'referring' | 'change'>;
  query?: string;
  classes?: string[];
  deadlineUnixMs: number;
  signal?: AbortSignal;
}

/** A router call that ended with a gRPC status other than OK. */
export class TileCallError extends Error {
  override readonly name = 'TileCallError';

  constructor(
    readonly code: grpc.status,
    readonly details: string,
    readonly retryAfterMs?: number,
    readonly reason?: string,
  ) {
    super(`router: ${grpc.status[code] ?? code}: ${details}`);
  }
}

/** What the scene driver needs from the router. */
export interface TileRouterPort {
  run(call: TileCall): Promise<InferenceResultJson>;
  close(): void;
}

type UnaryMethod = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<ProtoInferenceResult__Output>) => grpc.ClientUnaryCall;

/**
 * The router over gRPC for a scene's tiles: Caption or Perform with `x-rsmoe-priority: bulk`, so the router
 * queues the tile's expert jobs at BullMQ priority > 0 under MAX_BULK_WAITING_PER_EXPERT, behind every
 * interactive request. The gateway's RouterClientAdapter is the interactive edge; this one only needs two calls.
 */
export class TileRouterClient implements TileRouterPort {
  private readonly client: ProtoRouterClient;

  constructor(address: string) {
    this.client = new (loadRouterPackage().rsmoe.v1.Router)(address, grpc.credentials.createInsecure());
  }

  run(call: TileCall): Promise<InferenceResultJson> {
    const base = {
      requestId: call.requestId,
      images: [imageRefToProto(call.image)],
      params: generationParamsToProto({}),
      deadlineUnixMs: call.deadlineUnixMs,
      correlationId: '',
    };
    const method = (call.task === 'caption' ? this.client.Caption : this.client.Perform).bind(this.client) as unknown as UnaryMethod;
    const message =
      call.task === 'caption' ? base : { ...base, task: taskToProto(call.task), query: call.query ?? '', classes: call.classes ?? [] };
    return new Promise<InferenceResultJson>((resolve, reject) => {
      if (call.signal?.aborted) {
        reject(new TileCallError(grpc.status.CANCELLED, 'cancelled before the call'));
        return;
      }
      const metadata = new grpc.Metadata();
      metadata.set('x-request-id', call.requestId);
      metadata.set(PRIORITY_METADATA_KEY, 'bulk');
      const onAbort = (): void => pending.cancel();
      const pending = method(message, metadata, { deadline: new Date(call.deadlineUnixMs) }, (error, response) => {
        call.signal?.removeEventListener('abort', onAbort);
        if (error) {
          const retry = Number(String(error.metadata?.get('retry-after-ms')[0] ?? 'NaN'));
          const reason = error.metadata?.get(REASON_METADATA_KEY)[0];
          reject(new TileCallError(error.code, error.details, Number.isFinite(retry) ? retry : undefined, reason === undefined ? undefined : String(reason)));
        } else if (response === undefined) reject(new TileCallError(grpc.status.INTERNAL, 'empty response'));
        else {
          try {
            resolve(fromProtoResult(response));
          } catch (parseError) {
            reject(new TileCallError(grpc.status.INTERNAL, `invalid result: ${(parseError as Error).message}`));
          }
        }
      });
      call.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.client.close();
  }
}
