import type { GenerationParams, ImageRefJson, InferenceResultJson } from '@rsmoe/contracts';

/** Per-call settings every router call carries. */
export interface RouterCallContext {
  /** Sent as `request_id` (when the message has one) and as `x-request-id` metadata. */
  requestId: string;
  /** Instant after which the call is abandoned (Unix ms); becomes the gRPC deadline. */
  deadlineUnixMs: number;
  /** Aborted when the HTTP client goes away: the call is cancelled. */
  signal?: AbortSignal;
}

export interface CaptionCall extends RouterCallContext {
  /** The stored images, in prompt order (the HTTP endpoints send one). */
  images: ImageRefJson[];
  params: GenerationParams;
}

export interface AnswerCall extends CaptionCall {
  question: string;
}

/** One expert of the loaded pack, as `GET /v1/experts` returns it. */
export interface ExpertInfoJson {
  id: string;
  description: string;
  aspects: string[];
  questionTypes: string[];
  model: string;
  /** The BullMQ queue the expert consumes. */
  queue: string;
}

export interface ExpertListJson {
  packName: string;
  packVersion: string;
  experts: ExpertInfoJson[];
}

/** The router's `grpc.health.v1` answer: SERVING only when its model pack is loaded. */
export interface RouterHealth {
  serving: boolean;
  /** The ServingStatus name (`SERVING`, `NOT_SERVING`, ...) or the gRPC error that prevented the check. */
  status: string;
}

/**
 * What the gateway needs from the router. The grpc-js RouterClientAdapter implements it; tests inject
 * fakes. Every failed call rejects with a RouterCallError (gRPC status + details), which the exception
 * filter maps to HTTP in one place.
 */
export interface RouterPort {
  caption(call: CaptionCall): Promise<InferenceResultJson>;
  answer(call: AnswerCall): Promise<InferenceResultJson>;
  listExperts(call: RouterCallContext): Promise<ExpertListJson>;
  /** Never rejects: a failed check is `{serving: false, status: <why>}`. */
  checkHealth(deadlineUnixMs: number): Promise<RouterHealth>;
  close(): void | Promise<void>;
}
