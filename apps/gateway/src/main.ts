// Nest's decorators need the Reflect metadata API; tsx emits no metadata, so every injection is by explicit token.
import 'reflect-metadata';
import { ServiceMetrics, createLogger, startOpsServer, type Logger } from '@rsmoe/observability';
import type { KeyUsage } from './adapters/api-key-limiter.adapter';
import { createGatewayApp } from './gateway.app';
import { loadGatewayConfig } from './gateway.config';
import { taskOfRoute } from './inference/task-routes';

export { createGatewayApp } from './gateway.app';
export type { GatewayApp, GatewayDeps } from './gateway.app';
export { loadGatewayConfig } from './gateway.config';
export type { GatewayConfig } from './gateway.config';
export type { RouterPort } from './adapters/router.port';
export { RouterCallError } from './errors/router-status.mapping';

/**
 * Usage per API key (images today, daily quota), read from Redis at scrape time: the counts are shared by
 * every replica, so each reports the same truth, even for a key it has not served today. One Redis read
 * serves both gauges of a scrape.
 */
function watchKeyUsage(metrics: ServiceMetrics, usage: () => Promise<KeyUsage[]>, logger: Logger): void {
  let snapshot: { at: number; usage: Promise<KeyUsage[]> } | undefined;
  const read = (): Promise<KeyUsage[]> => {
    if (!snapshot || Date.now() - snapshot.at > 1_000) {
      snapshot = {
        at: Date.now(),
        usage: usage().catch((error: unknown) => {
          logger.warn('reading API key usage for the metrics failed', { error });
          return [];
        }),
      };
    }
    return snapshot.usage;
  };
  metrics.get('apiKeyImagesToday', async (gauge) => {
    const keys = await read();
    gauge.reset();
    for (const key of keys) gauge.set({ key: key.name }, key.imagesToday);
  });
  metrics.get('apiKeyDailyQuota', async (gauge) => {
    const keys = await read();
    gauge.reset();
    for (const key of keys) gauge.set({ key: key.name }, key.dailyQuota);
  });
}

async function main(): Promise<void> {
  const config = loadGatewayConfig(process.env);
  const logger = createLogger('gateway', { level: config.LOG_LEVEL });
  const metrics = new ServiceMetrics();
  const httpDuration = metrics.get('httpRequestDuration');
  const apiKeyRequests = metrics.get('apiKeyRequests');
  const gateway = await createGatewayApp(config, {
    logger,
    observeHttp: (method, route, status, seconds) => httpDuration.observe({ method, route, status: String(status), task: taskOfRoute(route) }, seconds),
    observeApiKey: (key, outcome) => apiKeyRequests.inc({ key, outcome }),
  });
  if (config.AUTH_MODE === 'required') watchKeyUsage(metrics, gateway.apiKeyUsage, logger);
  const ops = await startOpsServer({
    port: config.METRICS_PORT,
    host: config.METRICS_HOST,
    metrics,
    readinessElsewhere: `GET /v2/health/ready on port ${config.PORT}`,
    logger,
  });
  const url = await gateway.listen();
  logger.info('gateway ready', { url, router: config.ROUTER_URL, docs: `${url}/docs`, metricsPort: ops.port });

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping: no new connections, finishing in-flight requests', { signal });
    try {
      await gateway.close();
      await ops.close();
      logger.info('stopped');
      process.exit(0);
    } catch (error) {
      logger.error('shutdown failed', { error });
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

// Only when run as the entry point (node --import tsx apps/gateway/src/main.ts), not when imported.
if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `${JSON.stringify({ level: 'error', service: 'gateway', msg: 'start-up failed', error: error instanceof Error ? error.message : String(error) })}\n`,
    );
    process.exit(1);
  });
}
