import type { AddressInfo } from 'node:net';
import type { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import { RedisBlobStore, type BlobStore } from '@rsmoe/blobstore';
import { createRedisKeys } from '@rsmoe/contracts';
import { createLogger, type Logger } from '@rsmoe/observability';
import { Redis } from 'ioredis';
import { RedisResultReader, type ResultReader } from './adapters/result-reader.adapter';
import { RouterClientAdapter } from './adapters/router-client.adapter';
import type { RouterPort } from './adapters/router.port';
import { buildOpenApiDocument } from './docs/openapi.document';
import { ErrorResponseFilter } from './errors/error-response.filter';
import type { GatewayConfig } from './gateway.config';
import { GatewayModule, MAX_FORM_FIELD_BYTES } from './gateway.module';
import { requestContextMiddleware, type HttpObserver } from './http/request-context.middleware';

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
}

export interface GatewayApp {
  readonly app: NestExpressApplication;
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

/** The JSON body limit: a base64 image of MAX_IMAGE_BYTES plus its data URL prefix, a question and params. */
function jsonBodyLimit(config: GatewayConfig): number {
  return Math.ceil(config.MAX_IMAGE_BYTES / 3) * 4 + 2 * MAX_FORM_FIELD_BYTES + config.MAX_QUESTION_CHARS * 6;
}

/**
 * Builds the gateway (not yet listening). Configuration comes in already parsed (main.ts reads the
 * environment once); anything in `deps` replaces what would be built from it.
 */
export async function createGatewayApp(config: GatewayConfig, deps: GatewayDeps = {}): Promise<GatewayApp> {
  const logger = deps.logger ?? createLogger('gateway', { level: config.LOG_LEVEL });
  const ownsRedis = deps.redis === undefined;
  // Few retries per command: a request fails fast with 503 rather than hanging while Redis is away.
  const redis = deps.redis ?? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 2_000 });
  if (ownsRedis) redis.on('error', (error: Error) => logger.warn('redis connection error', { error: error.message }));
  const ownsRouter = deps.router === undefined;
  const router = deps.router ?? new RouterClientAdapter(config.ROUTER_URL);
  const keys = createRedisKeys(config.KEY_PREFIX);

  const module = GatewayModule.forRoot({
    config,
    router,
    blobStore: deps.blobStore ?? new RedisBlobStore(redis, { keyPrefix: config.KEY_PREFIX, ttlSeconds: config.BLOB_TTL_S, maxBytes: config.MAX_IMAGE_BYTES }),
    resultReader: deps.resultReader ?? new RedisResultReader(redis, keys),
    redisProbe: redis,
    logger,
  });
  const app = await NestFactory.create<NestExpressApplication>(module, new ExpressAdapter(), {
    bodyParser: false,
    abortOnError: false,
    logger: nestLogger(logger),
  });
  app.disable('x-powered-by');
  // Order matters: the request id exists before the body is parsed, so even a 413 carries it.
  app.use(requestContextMiddleware(logger, deps.observeHttp));
  app.useBodyParser('json', { limit: jsonBodyLimit(config) });
  app.useGlobalFilters(new ErrorResponseFilter(logger));
  SwaggerModule.setup('docs', app, buildOpenApiDocument(config), { jsonDocumentUrl: 'docs-json' });
  await app.init();

  let closing: Promise<void> | undefined;
  return {
    app,
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
        if (ownsRouter) await router.close();
        if (ownsRedis) await redis.quit().catch(() => redis.disconnect());
      })();
      return closing;
    },
  };
}
