import { randomBytes } from 'node:crypto';
import { TASKS, apiKeyId, apiKeyRecordFields, createRedisKeys, generateApiKeySecret, type ApiKeyRecord, type InferenceResultJson } from '@rsmoe/contracts';
import { createLogger } from '@rsmoe/observability';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import type { AnswerCall, CaptionCall, ExpertListJson, InferCall, PartialListener, RouterCallContext, RouterHealth, RouterPort, TaskCall } from '../adapters/router.port';
import { createGatewayApp, type GatewayApp } from '../gateway.app';
import { loadGatewayConfig, type GatewayConfig } from '../gateway.config';

/** A result as the router would send it, for `requestId`. */
export function cannedResult(requestId: string, task: 'caption' | 'vqa' = 'caption', question = 'Is there a road?'): InferenceResultJson {
  return {
    requestId,
    task,
    ...(task === 'caption' ? { caption: 'a residential area. there are many buildings.' } : { answer: 'yes', question, questionType: 'presence' as const }),
    experts: [
      {
        expertId: 'theme',
        prompt: 'describe the scene .',
        text: 'a residential area.',
        status: 'ok',
        promptTokens: 12,
        generatedTokens: 4,
        finishReason: 'eos',
        timings: { queueMs: 1, preprocessMs: 2, visionEncodeMs: 3, prefillMs: 4, decodeMs: 5, timeToFirstTokenMs: 9, computeMs: 14 },
        model: 'tiny-llava',
        featuresCached: false,
      },
    ],
    routed: [{ expertId: 'theme', reason: 'captions use every expert' }],
    degraded: false,
    missingExperts: [],
    timings: { queueMs: 1, computeMs: 14, totalMs: 20 },
    packName: 'test-pack',
    packVersion: '0.0.1',
    fusionStrategy: task === 'caption' ? 'ordered-dedup' : 'priority',
  };
}

export const CANNED_EXPERTS: ExpertListJson = {
  packName: 'test-pack',
  packVersion: '0.0.1',
  experts: [{ id: 'theme', description: 'scene type', aspects: ['theme'], questionTypes: ['rural_urban'], model: 'tiny-llava', queue: 'expert.theme', tasks: ['caption', 'vqa'] }],
};

type Behaviour = (call: CaptionCall | AnswerCall | TaskCall) => Promise<InferenceResultJson>;

/** A result of one of RSUniVLM's tasks as the router would send it (a 2×2 mask grid, one box). */
export function cannedTaskResult(call: TaskCall): InferenceResultJson {
  const base = cannedResult(call.requestId);
  const { caption: _caption, ...rest } = base;
  const grid = (classes: string[]) => ({ width: 2, height: 2, labels: Buffer.from([0, 1, 1, 0]).toString('base64'), classes });
  const fields: Partial<InferenceResultJson> = {
    classification: {
      label: 'farmland',
      labelScores: [
        { label: 'farmland', value: 0.7 },
        { label: 'forest', value: 0.3 },
      ],
    },
    grounding: { boxes: [{ x1: 25, y1: 25, x2: 75, y2: 50 }], query: call.query },
    referring: { caption: 'a storage tank.', box: call.box },
    segmentation: { mask: grid(['others', ...(call.classes ?? [call.query ?? 'building'])]), ...(call.query ? { query: call.query } : {}) },
    change: { caption: 'two buildings were built.', mask: grid(['others', 'changed']) },
  }[call.task];
  return { ...rest, task: call.task, ...fields, fusionStrategy: 'task-output' };
}

/** A RouterPort that records every call and answers with a canned result (or whatever `behaviour` does). */
export class FakeRouter implements RouterPort {
  readonly calls: Array<{ method: 'caption' | 'answer' | 'perform' | 'stream'; call: CaptionCall | AnswerCall | TaskCall }> = [];
  behaviour: Behaviour | undefined;
  health: RouterHealth = { serving: true, status: 'SERVING' };
  /** What ListExperts answers (an Error: it fails with it). */
  experts: ExpertListJson | Error = CANNED_EXPERTS;
  /** How many times ListExperts was called. */
  listExpertsCalls = 0;

  async caption(call: CaptionCall): Promise<InferenceResultJson> {
    this.calls.push({ method: 'caption', call });
    return this.behaviour ? this.behaviour(call) : cannedResult(call.requestId);
  }

  async answer(call: AnswerCall): Promise<InferenceResultJson> {
    this.calls.push({ method: 'answer', call });
    return this.behaviour ? this.behaviour(call) : cannedResult(call.requestId, 'vqa', call.question);
  }

  async perform(call: TaskCall): Promise<InferenceResultJson> {
    this.calls.push({ method: 'perform', call });
    return this.behaviour ? this.behaviour(call) : cannedTaskResult(call);
  }

  /** Replaces the default streaming (each expert of the answer, then the answer) when set. */
  streamBehaviour: ((call: InferCall, onPartial: PartialListener) => Promise<InferenceResultJson>) | undefined;

  /** Streams each expert of the answer (canned, or `behaviour`'s) as a partial, one macrotask apart, then answers. */
  async stream(call: InferCall, onPartial: PartialListener): Promise<InferenceResultJson> {
    this.calls.push({ method: 'stream', call });
    if (this.streamBehaviour) return this.streamBehaviour(call, onPartial);
    const result = this.behaviour
      ? await this.behaviour(call)
      : call.task === 'caption'
        ? cannedResult(call.requestId)
        : call.task === 'vqa'
          ? cannedResult(call.requestId, 'vqa', call.question)
          : cannedTaskResult(call);
    for (const expert of result.experts) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      onPartial(expert);
    }
    return result;
  }

  async listExperts(_call: RouterCallContext): Promise<ExpertListJson> {
    this.listExpertsCalls += 1;
    if (this.experts instanceof Error) throw this.experts;
    return this.experts;
  }

  async checkHealth(_deadlineUnixMs: number): Promise<RouterHealth> {
    return this.health;
  }

  close(): void {}
}

/**
 * Stores an API key under `keyPrefix` as `rsmoe keys create` does (defaults: 10/s, burst 20, 10 000 images a
 * day, every task) and returns its secret.
 */
export async function createTestApiKey(redis: Redis, keyPrefix: string, settings: Partial<ApiKeyRecord> & { name: string }): Promise<string> {
  const secret = generateApiKeySecret();
  const keys = createRedisKeys(keyPrefix);
  const record: ApiKeyRecord = { ratePerSecond: 10, burst: 20, dailyQuota: 10_000, tasks: [...TASKS], createdAtUnixMs: Date.now(), ...settings };
  await redis.hset(keys.apiKeyKey(apiKeyId(secret)), apiKeyRecordFields(record));
  await redis.hset(keys.apiKeyIndexKey(), record.name, apiKeyId(secret));
  return secret;
}

/** The configuration of a test gateway: port 0, a random key prefix, small limits so that tests stay fast. */
export function testConfig(overrides: Record<string, string> = {}): GatewayConfig {
  return loadGatewayConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    KEY_PREFIX: `gwtest-${randomBytes(6).toString('hex')}`,
    MAX_IMAGE_BYTES: String(64 * 1024),
    MAX_IMAGE_PIXELS: String(100 * 100),
    MAX_QUESTION_CHARS: '50',
    REQUEST_TIMEOUT_MS: '5000',
    MAX_REQUEST_TIMEOUT_MS: '10000',
    READY_CHECK_TIMEOUT_MS: '500',
    SHUTDOWN_TIMEOUT_MS: '1000',
    LOG_LEVEL: 'error',
    // Suites that test API keys ask for AUTH_MODE=required; every other suite runs without keys.
    AUTH_MODE: 'off',
    ...overrides,
  });
}

/** Test images, made with sharp. */
export const images = {
  png: (width = 16, height = 16) => sharp({ create: { width, height, channels: 3, background: '#3a6b35' } }).png().toBuffer(),
  jpeg: () => sharp({ create: { width: 16, height: 16, channels: 3, background: '#8a7f6b' } }).jpeg().toBuffer(),
  webp: () => sharp({ create: { width: 16, height: 16, channels: 3, background: '#5d7fa3' } }).webp().toBuffer(),
  tiff: () => sharp({ create: { width: 16, height: 16, channels: 3, background: '#777777' } }).tiff().toBuffer(),
  gif: () => sharp({ create: { width: 16, height: 16, channels: 3, background: '#ff0000' } }).gif().toBuffer(),
  /** Random (incompressible) pixels: a PNG of roughly width × height × 3 bytes. */
  noisyPng: (width: number, height: number) => sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } }).png().toBuffer(),
  /** A PNG signature followed by garbage: sniffed as PNG, header unreadable. */
  corruptPng: () => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('this is not an IHDR chunk at all')]),
};

/** An in-process gateway on an ephemeral port: real HTTP and Redis (a random key prefix), a fake router. */
export interface TestGateway {
  config: GatewayConfig;
  redis: Redis;
  router: FakeRouter;
  gateway: GatewayApp;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** Closes the gateway, deletes the keys it wrote, closes Redis. */
  close(): Promise<void>;
}

export async function startTestGateway(overrides: Record<string, string> = {}): Promise<TestGateway> {
  const config = testConfig(overrides);
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
  const router = new FakeRouter();
  const gateway = await createGatewayApp(config, { router, redis, logger: createLogger('gateway', { level: 'error', write: () => {} }) });
  const base = await gateway.listen();
  return {
    config,
    redis,
    router,
    gateway,
    base,
    async close() {
      await gateway.close();
      const keys = await redis.keys(`${config.KEY_PREFIX}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    },
  };
}

/** A multipart body: strings as fields, buffers as file parts named `<name>.png`. */
export function multipartForm(fields: Record<string, string | Buffer>): FormData {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === 'string') data.append(name, value);
    else data.append(name, new Blob([new Uint8Array(value)]), `${name}.png`);
  }
  return data;
}
