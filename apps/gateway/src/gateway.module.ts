import { Module, type DynamicModule } from '@nestjs/common';
import { createRedisKeys } from '@rsmoe/contracts';
import type { BlobStore } from '@rsmoe/blobstore';
import type { Logger } from '@rsmoe/observability';
import type { AsyncAnswerStore } from './adapters/async-answer-store.adapter';
import type { IdempotencyStore } from './adapters/idempotency-store.adapter';
import type { RequestEraser } from './adapters/request-eraser.adapter';
import type { RequestOwnerStore } from './adapters/request-owner-store.adapter';
import type { ResultReader } from './adapters/result-reader.adapter';
import type { RouterPort } from './adapters/router.port';
import { ExpertsController } from './experts/experts.controller';
import type { GatewayConfig } from './gateway.config';
import { HealthController } from './health/health.controller';
import { HealthService, type RedisProbe } from './health/health.service';
import type { MultipartLimits } from './http/multipart-form';
import { InferenceController } from './inference/inference.controller';
import type { OverloadGate } from './inference/overload-gate';
import { InferenceService } from './inference/inference.service';
import { ImageIntake } from './intake/image-intake.service';
import { OpenAiController } from './openai/openai.controller';
import { OpenAiService } from './openai/openai.service';
import { PlaygroundController } from './playground/playground.controller';
import { RequestsController } from './requests/requests.controller';
import { ScenesModule } from './scenes/scenes.module';
import type { SceneService } from './scenes/scenes.service';
import {
  ASYNC_ANSWERS,
  BLOB_STORE,
  GATEWAY_CONFIG,
  IMAGE_INTAKE,
  LOGGER,
  MULTIPART_LIMITS,
  OVERLOAD_GATE,
  IDEMPOTENCY,
  REDIS_KEYS,
  REDIS_PROBE,
  REQUEST_ERASER,
  REQUEST_OWNERS,
  RESULT_READER,
  ROUTER,
} from './tokens';

/** Everything the gateway talks to; built (or faked) by createGatewayApp and injected by token. */
export interface GatewayModuleDeps {
  config: GatewayConfig;
  router: RouterPort;
  blobStore: BlobStore;
  resultReader: ResultReader;
  asyncAnswers: AsyncAnswerStore;
  requestEraser: RequestEraser;
  idempotency: IdempotencyStore;
  /** Which API key made each request (written and read only when AUTH_MODE=required). */
  requestOwners: RequestOwnerStore;
  redisProbe: RedisProbe;
  /** Shared with the early-refusal middleware of createGatewayApp. */
  overloadGate: OverloadGate;
  logger: Logger;
  /** Whole scenes (POST /v1/scenes …): the scene store, the scene state in Redis, the `scenes` queue. */
  scenes: SceneService;
}

/** Largest multipart text field (question, params, timeoutMs), in bytes, unless the question limit needs more. */
export const MAX_FORM_FIELD_BYTES = 64 * 1024;

/** Largest multipart text field: MAX_FORM_FIELD_BYTES, or room for the longest accepted question in UTF-8, so that the intake's own check (422) decides. */
export function formFieldBytes(config: GatewayConfig): number {
  return Math.max(MAX_FORM_FIELD_BYTES, config.MAX_QUESTION_CHARS * 4 + 1024);
}

/** The gateway's one module: five thin controllers, three services, adapters provided as values. */
@Module({})
export class GatewayModule {
  static forRoot(deps: GatewayModuleDeps): DynamicModule {
    const { config } = deps;
    return {
      module: GatewayModule,
      imports: [
        ScenesModule.forRoot(deps.scenes),
      ],
      controllers: [InferenceController, OpenAiController, RequestsController, ExpertsController, HealthController, PlaygroundController],
      providers: [
        { provide: GATEWAY_CONFIG, useValue: config },
        { provide: ROUTER, useValue: deps.router },
        { provide: BLOB_STORE, useValue: deps.blobStore },
        { provide: RESULT_READER, useValue: deps.resultReader },
        { provide: ASYNC_ANSWERS, useValue: deps.asyncAnswers },
        { provide: REQUEST_OWNERS, useValue: deps.requestOwners },
        { provide: REQUEST_ERASER, useValue: deps.requestEraser },
        { provide: IDEMPOTENCY, useValue: deps.idempotency },
        { provide: REDIS_KEYS, useValue: createRedisKeys(config.KEY_PREFIX) },
        { provide: REDIS_PROBE, useValue: deps.redisProbe },
        { provide: LOGGER, useValue: deps.logger },
        { provide: OVERLOAD_GATE, useValue: deps.overloadGate },
        // A file part stops being read at MAX_IMAGE_BYTES (413) instead of buffering a huge body. A change
        // request sends two images; every other endpoint takes one file field.
        { provide: MULTIPART_LIMITS, useValue: { fileBytes: config.MAX_IMAGE_BYTES, fieldBytes: formFieldBytes(config), files: 2, fields: 8, parts: 10 } satisfies MultipartLimits },
        {
          provide: IMAGE_INTAKE,
          useValue: new ImageIntake({
            maxImageBytes: config.MAX_IMAGE_BYTES,
            maxImagePixels: config.MAX_IMAGE_PIXELS,
            maxQuestionChars: config.MAX_QUESTION_CHARS,
            defaultTimeoutMs: config.REQUEST_TIMEOUT_MS,
            maxTimeoutMs: config.MAX_REQUEST_TIMEOUT_MS,
            longTask: { defaultTimeoutMs: config.LONG_TASK_TIMEOUT_MS, maxTimeoutMs: config.MAX_LONG_TASK_TIMEOUT_MS },
            generation: {
              maxNewTokens: config.MAX_NEW_TOKENS,
              maxBeams: config.MAX_BEAMS,
              maxStopStrings: config.MAX_STOP_STRINGS,
              maxStopStringsChars: config.MAX_STOP_STRINGS_CHARS,
            },
          }),
        },
        InferenceService,
        OpenAiService,
        HealthService,
      ],
    };
  }
}
