// The generated gRPC types under stable names. `X` is what you may send (permissive), `X__Output` what
// the loader (PROTO_LOADER_OPTIONS) hands you. Prefixed with Proto so they never clash with the JSON types.
export type { ProtoGrpcType as RouterProtoGrpcType } from './generated/router';
export type { ProtoGrpcType as HealthProtoGrpcType } from './generated/health';
export type {
  RouterClient as ProtoRouterClient,
  RouterDefinition as ProtoRouterDefinition,
  RouterHandlers as ProtoRouterHandlers,
} from './generated/rsmoe/v1/Router';
export type { AnswerRequest as ProtoAnswerRequest, AnswerRequest__Output as ProtoAnswerRequest__Output } from './generated/rsmoe/v1/AnswerRequest';
export type { CaptionRequest as ProtoCaptionRequest, CaptionRequest__Output as ProtoCaptionRequest__Output } from './generated/rsmoe/v1/CaptionRequest';
export type {
  ExpertErrorCode as ProtoExpertErrorCode,
  ExpertErrorCode__Output as ProtoExpertErrorCode__Output,
} from './generated/rsmoe/v1/ExpertErrorCode';
export type { ExpertInfo as ProtoExpertInfo, ExpertInfo__Output as ProtoExpertInfo__Output } from './generated/rsmoe/v1/ExpertInfo';
export type { ExpertOutput as ProtoExpertOutput, ExpertOutput__Output as ProtoExpertOutput__Output } from './generated/rsmoe/v1/ExpertOutput';
export type { ExpertStatus as ProtoExpertStatus, ExpertStatus__Output as ProtoExpertStatus__Output } from './generated/rsmoe/v1/ExpertStatus';
export type { ExpertTimings as ProtoExpertTimings, ExpertTimings__Output as ProtoExpertTimings__Output } from './generated/rsmoe/v1/ExpertTimings';
export type {
  GenerationParams as ProtoGenerationParams,
  GenerationParams__Output as ProtoGenerationParams__Output,
} from './generated/rsmoe/v1/GenerationParams';
export type { ImageRef as ProtoImageRef, ImageRef__Output as ProtoImageRef__Output } from './generated/rsmoe/v1/ImageRef';
export type { InferRequest as ProtoInferRequest, InferRequest__Output as ProtoInferRequest__Output } from './generated/rsmoe/v1/InferRequest';
export type { InferenceEvent as ProtoInferenceEvent, InferenceEvent__Output as ProtoInferenceEvent__Output } from './generated/rsmoe/v1/InferenceEvent';
export type {
  InferenceResult as ProtoInferenceResult,
  InferenceResult__Output as ProtoInferenceResult__Output,
} from './generated/rsmoe/v1/InferenceResult';
export type {
  ListExpertsRequest as ProtoListExpertsRequest,
  ListExpertsRequest__Output as ProtoListExpertsRequest__Output,
} from './generated/rsmoe/v1/ListExpertsRequest';
export type {
  ListExpertsResponse as ProtoListExpertsResponse,
  ListExpertsResponse__Output as ProtoListExpertsResponse__Output,
} from './generated/rsmoe/v1/ListExpertsResponse';
export type { ResultTimings as ProtoResultTimings, ResultTimings__Output as ProtoResultTimings__Output } from './generated/rsmoe/v1/ResultTimings';
export type { RoutedExpert as ProtoRoutedExpert, RoutedExpert__Output as ProtoRoutedExpert__Output } from './generated/rsmoe/v1/RoutedExpert';
export type { Task as ProtoTask, Task__Output as ProtoTask__Output } from './generated/rsmoe/v1/Task';
export type { TaskRequest as ProtoTaskRequest, TaskRequest__Output as ProtoTaskRequest__Output } from './generated/rsmoe/v1/TaskRequest';
export type { PercentBox as ProtoPercentBox, PercentBox__Output as ProtoPercentBox__Output } from './generated/rsmoe/v1/PercentBox';
export type { LabelGrid as ProtoLabelGrid, LabelGrid__Output as ProtoLabelGrid__Output } from './generated/rsmoe/v1/LabelGrid';
export type { ChangeOutput as ProtoChangeOutput, ChangeOutput__Output as ProtoChangeOutput__Output } from './generated/rsmoe/v1/ChangeOutput';
export type {
  HealthClient as ProtoHealthClient,
  HealthDefinition as ProtoHealthDefinition,
  HealthHandlers as ProtoHealthHandlers,
} from './generated/grpc/health/v1/Health';
export type {
  HealthCheckRequest as ProtoHealthCheckRequest,
  HealthCheckRequest__Output as ProtoHealthCheckRequest__Output,
} from './generated/grpc/health/v1/HealthCheckRequest';
export type {
  HealthCheckResponse as ProtoHealthCheckResponse,
  HealthCheckResponse__Output as ProtoHealthCheckResponse__Output,
  _grpc_health_v1_HealthCheckResponse_ServingStatus__Output as ProtoServingStatus__Output,
} from './generated/grpc/health/v1/HealthCheckResponse';
