import type { ChangeOutput, ExpertOutputJson, ExpertTask, GenerationParams, ImageRefJson, InferenceResultJson, PercentBoxJson, Task } from '@rsmoe/contracts';

/** Per-call settings every router call carries. */
export interface RouterCallContext {
  /** The mesh's request id (made by the gateway): sent as `request_id` (when the message has one) and as `x-request-id` metadata. */
  requestId: string;
  /** The client's own id, when it sent one: `correlation_id` (Caption/Answer) and `x-correlation-id` metadata. */
  correlationId?: string;
  /** W3C trace context of the gateway's span: `traceparent` metadata. */
  traceparent?: string;
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

/** One of RSUniVLM's tasks (the router's Perform). */
export interface TaskCall extends CaptionCall {
  task: Exclude<Task, 'caption' | 'vqa'>;
  query?: string;
  /** Referring: the region, in percent of the image. */
  box?: PercentBoxJson;
  classes?: string[];
  changeOutput?: ChangeOutput;
}

/** A request of any task, for the router's streaming InferStream. */
export type InferCall = (CaptionCall & { task: 'caption' }) | (AnswerCall & { task: 'vqa' }) | TaskCall;

/** Told each expert's output as it finishes, before the fused result. */
export type PartialListener = (output: ExpertOutputJson) => void;

/** One expert of the loaded pack, as `GET /v1/experts` returns it. */
export interface ExpertInfoJson {
  id: string;
  description: string;
  aspects: string[];
  questionTypes: string[];
  model: string;
  /** The BullMQ queue the expert consumes. */
  queue: string;
  /** Tasks the expert has a prompt for; empty from a router that does not say (read as caption and vqa). */
  tasks: ExpertTask[];
  /** RSUniVLM's granularity of the expert (image, region, pixel); absent for an RS-MoE expert. */
  granularity?: string;
  /** Workers on its queue at the router's last poll; absent while unknown. 0: the expert is down. */
  liveWorkers?: number;
  /** Interactive jobs waiting on its queue at the router's last poll; absent while unknown. */
  waitingJobs?: number;
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
  perform(call: TaskCall): Promise<InferenceResultJson>;
  /**
   * Any task, streamed (InferStream): `onPartial` is told each expert's output as it finishes; resolves with
   * the fused result. The call's signal cancels it, as for the unary calls.
   */
  stream(call: InferCall, onPartial: PartialListener): Promise<InferenceResultJson>;
  listExperts(call: RouterCallContext): Promise<ExpertListJson>;
  /** Never rejects: a failed check is `{serving: false, status: <why>}`. */
  checkHealth(deadlineUnixMs: number): Promise<RouterHealth>;
  close(): void | Promise<void>;
}
