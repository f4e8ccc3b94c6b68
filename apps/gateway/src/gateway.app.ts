import type { AddressInfo } from 'node:net';
import type { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import { RedisBlobStore, type BlobStore } from '@rsmoe/blobstore';
import { createRedisKeys } from '@rsmoe/contracts';
import { RedisOutageLog, createLogger, type Logger } from '@rsmoe/observability';
import helmet from 'helmet';
import { Redis } from 'ioredis';
import { RedisApiKeyLimiter, type ApiKeyLimiter, type KeyUsage } from './adapters/api-key-limiter.adapter';
import { RedisAsyncAnswerStore } from './adapters/async-answer-store.adapter';
import { RedisIdempotencyStore } from './adapters/idempotency-store.adapter';
import { RequestEraser } from './adapters/request-eraser.adapter';
import { RedisRequestOwnerStore } from './adapters/request-owner-store.adapter';
import { RedisResultReader, type ResultReader } from './adapters/result-reader.adapter';
import { RouterClientAdapter } from './adapters/router-client.adapter';
import type { RouterPort } from './adapters/router.port';
import { buildOpenApiDocument } from './docs/openapi.document';
import { ErrorResponseFilter } from './errors/error-response.filter';
import type { GatewayConfig } from './gateway.config';
import { formFieldBytes, GatewayModule } from './gateway.module';
import { API_KEY_HEADER, RATE_LIMIT_HEADERS, apiKeyMiddleware, type ApiKeyObserver } from './http/api-key.middleware';
import { bodyIdleTimeoutMiddleware, declaredBodySizeMiddleware, overloadGateMiddleware } from './http/edge-guards.middleware';
import { assertJsonDepth } from './http/json-depth';
import { CORRELATION_ID_HEADER, requestContextMiddleware, type HttpObserver } from './http/request-context.middleware';
import { OverloadGate } from './inference/overload-gate';
import { SceneService } from './scenes/scenes.service';

/** Replacements for what createGatewayApp would otherwise build from the configuration (tests inject fakes). */
export interface GatewayDeps {
  /** Default: a RouterClientAdapter on ROUTER_URL (closed with the app). */
  router?: RouterPort;
  /** Default: an ioredis client on REDIS_URL (closed with the app). A given one is left open. */
  redis?: Redis;
  /** Default: a RedisBlobStore on `redis` under KEY_PREFIX. */
  blobStore?: BlobStore;
  /** Default: a RedisResultReader on `redis` under KEY_PREFIX. */
  resultReader?: ResultReader;
  logger?: Logger;
  /** Told of every finished HTTP request (main.ts feeds rsmoe_http_request_duration_seconds). */
  observeHttp?: HttpObserver;
  /** Default: a RedisApiKeyLimiter on `redis` under KEY_PREFIX (used when AUTH_MODE=required). */
  apiKeyLimiter?: ApiKeyLimiter;
  /** Told of every API-key decision (main.ts feeds rsmoe_api_key_requests_total). */
  observeApiKey?: ApiKeyObserver;
}

export interface GatewayApp {
  readonly app: NestExpressApplication;
  /** Every API key's images today and daily quota (for the usage gauges). */
  apiKeyUsage(): Promise<KeyUsage[]>;
  /** Starts listening (PORT / HOST of the config unless given); resolves with the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /**
   * Stops accepting connections, lets in-flight requests finish (at most SHUTDOWN_TIMEOUT_MS, then their
   * connections are closed), then closes the app and what it owns (router client, Redis).
   */
  close(): Promise<void>;
}

/** Nest's own messages into the structured log; its chatty start-up lines at debug. */
function nestLogger(logger: Logger): LoggerService {
  const text = (message: unknown): string => (message instanceof Error ? message.message : String(message));
  const context = (params: unknown[]) => ({ context: params.filter((p) => typeof p === 'string').at(-1) });
  return {
    log: (message, ...params) => logger.debug(text(message), context(params)),
    debug: (message, ...params) => logger.debug(text(message), context(params)),
    verbose: (message, ...params) => logger.debug(text(message), context(params)),
    warn: (message, ...params) => logger.warn(text(message), context(params)),
    error: (message, ...params) => logger.error(text(message), context(params)),
    fatal: (message, ...params) => logger.error(text(message), context(params)),
  };
}

/**
 * The largest multipart body that can be valid: two images (a change request's pair), the four text fields
 * at their largest, part headers.
 */
function multipartBodyLimit(config: GatewayConfig): number {
  return 2 * config.MAX_IMAGE_BYTES + 4 * formFieldBytes(config) + 64 * 1024;
}

/** Response headers a browser client may read when CORS is on. */
const EXPOSED_HEADERS = ['X-Request-Id', 'X-Correlation-Id', 'Retry-After', 'traceparent', 'Idempotent-Replayed', 'Location', ...RATE_LIMIT_HEADERS];

/**
 * Builds the gateway (not yet listening). Configuration comes in already parsed (main.ts reads the
 * environment once); anything in `deps` replaces what would be built from it.
 */
export async function createGatewayApp(config: GatewayConfig, deps: GatewayDeps = {}): Promise<GatewayApp> {
  const logger = deps.logger ?? createLogger('gateway', { level: config.LOG_LEVEL });
  const ownsRedis = deps.redis === undefined;
  // Few retries per command: a request fails fast with 503 rather than hanging while Redis is away.
  const redis = deps.redis ?? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 2_000 });
  // One log line per Redis outage (then one "reconnected after N ms, M errors"), not one per retry.
  if (ownsRedis) new RedisOutageLog(logger).watch(redis, 'redis');
  const ownsRouter = deps.router === undefined;
  const router = deps.router ?? new RouterClientAdapter(config.ROUTER_URL);
  const keys = createRedisKeys(config.KEY_PREFIX);
  const overloadGate = new OverloadGate();
  const limiter = deps.apiKeyLimiter ?? new RedisApiKeyLimiter(redis, keys);
  const scenes = new SceneService(config, redis, logger, limiter);

  const module = GatewayModule.forRoot({
    config,
    router,
    blobStore: deps.blobStore ?? new RedisBlobStore(redis, { keyPrefix: config.KEY_PREFIX, ttlSeconds: config.BLOB_TTL_S, maxBytes: config.MAX_IMAGE_BYTES }),
    resultReader: deps.resultReader ?? new RedisResultReader(redis, keys),
    asyncAnswers: new RedisAsyncAnswerStore(redis, keys, config.ASYNC_ANSWER_TTL_S),
    requestEraser: new RequestEraser(redis, keys),
    idempotency: new RedisIdempotencyStore(redis, Math.max(config.RESULT_TTL_S, config.ASYNC_ANSWER_TTL_S)),
    // A request's owner lives as long as whatever GET /v1/requests/{id} can still serve of it.
    requestOwners: new RedisRequestOwnerStore(redis, keys, Math.max(config.RESULT_TTL_S, config.ASYNC_ANSWER_TTL_S)),
    redisProbe: redis,
    overloadGate,
    logger,
    scenes,
  });
  const app = await NestFactory.create<NestExpressApplication>(module, new ExpressAdapter(), {
    bodyParser: false,
    abortOnError: false,
    logger: nestLogger(logger),
  });
  app.disable('x-powered-by');
  // Express hashes every response body for a weak ETag; answers are per request and never revalidated.
  app.set('etag', false);
  const server = app.getHttpServer();
  // Slow clients are cut off: headers within HEADERS_TIMEOUT_MS, the whole request within REQUEST_BODY_TIMEOUT_MS
  // (Node answers 408), checked every second instead of Node's default 30 s.
  server.headersTimeout = config.HEADERS_TIMEOUT_MS;
  server.requestTimeout = config.REQUEST_BODY_TIMEOUT_MS;
  // A public property read at listen(), absent from @types/node.
  (server as typeof server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(1_000, config.HEADERS_TIMEOUT_MS);
  server.maxConnections = config.MAX_CONNECTIONS;
  // Order matters: the request id exists before the body is parsed, so even a 413 carries it.
  app.use(requestContextMiddleware(logger, deps.observeHttp));
  // helmet's defaults, except upgrade-insecure-requests: the gateway speaks plain HTTP behind its ingress, and
  // the upgrade would break /docs' own scripts when opened by address (http://10.0.0.5:8080/docs).
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  if (config.CORS_ORIGINS.length > 0) {
    app.enableCors({
      origin: config.CORS_ORIGINS.includes('*') ? '*' : config.CORS_ORIGINS,
      methods: ['GET', 'POST'],
      allowedHeaders: ['Content-Type', 'X-Request-Id', CORRELATION_ID_HEADER, 'X-Request-Timeout-Ms', 'traceparent', 'Authorization', API_KEY_HEADER, 'Idempotency-Key', 'Prefer'],
      exposedHeaders: EXPOSED_HEADERS,
      maxAge: 600,
    });
  }
  const bodyLimits = { json: config.MAX_JSON_BODY_BYTES, multipart: multipartBodyLimit(config), scene: config.MAX_SCENE_BYTES + 64 * 1024 };
  // Who is asking, and whether they may, before anything else looks at the body.
  if (config.AUTH_MODE === 'required') {
    app.use(apiKeyMiddleware({ limiter, bodyLimits, logger, ...(deps.observeApiKey ? { observe: deps.observeApiKey } : {}) }));
  }
  app.use(overloadGateMiddleware(overloadGate, bodyLimits));
  app.use(declaredBodySizeMiddleware(bodyLimits));
  app.use(bodyIdleTimeoutMiddleware(config.BODY_IDLE_TIMEOUT_MS));
  // A JSON body over MAX_JSON_BODY_BYTES is refused (413) from its Content-Length, or as soon as the streamed
  // bytes pass it, never parsed: large images go as multipart.
  app.useBodyParser('json', { limit: config.MAX_JSON_BODY_BYTES, verify: (_req: unknown, _res: unknown, body: Buffer) => assertJsonDepth(body) });
  app.useGlobalFilters(new ErrorResponseFilter(logger));
  SwaggerModule.setup('docs', app, buildOpenApiDocument(config), { jsonDocumentUrl: 'docs-json' });
  await app.init();

  let closing: Promise<void> | undefined;
  return {
    app,
    apiKeyUsage: () => limiter.usage(),
    async listen(port = config.PORT, host = config.HOST) {
      await app.listen(port, host);
      const address = app.getHttpServer().address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${shownHost === '0.0.0.0' || shownHost === '[::]' ? '127.0.0.1' : shownHost}:${address.port}`;
    },
    close() {
      closing ??= (async () => {
        const server = app.getHttpServer();
        if (server.listening) {
          // close() stops accepting and resolves once in-flight requests are done (idle keep-alive sockets are closed).
          const drained = new Promise<void>((resolve) => server.close(() => resolve()));
          // A keep-alive connection whose request finishes during the drain turns idle: close it then, not at its timeout.
          const sweep = setInterval(() => server.closeIdleConnections(), 50);
          const timer = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
          await drained;
          clearInterval(sweep);
          clearTimeout(timer);
        }
        await app.close();
        await scenes.close();
        if (ownsRouter) await router.close();
        if (ownsRedis) await redis.quit().catch(() => redis.disconnect());
      })();
      return closing;
    },
  };
}
