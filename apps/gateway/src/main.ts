// Nest's decorators need the Reflect metadata API; tsx emits no metadata, so every injection is by explicit token.
import 'reflect-metadata';
import { ServiceMetrics, createLogger, startOpsServer } from '@rsmoe/observability';
import { createGatewayApp } from './gateway.app';
import { loadGatewayConfig } from './gateway.config';
import { taskOfRoute } from './inference/task-routes';

export { createGatewayApp } from './gateway.app';
export type { GatewayApp, GatewayDeps } from './gateway.app';
export { loadGatewayConfig } from './gateway.config';
export type { GatewayConfig } from './gateway.config';
export type { RouterPort } from './adapters/router.port';
export { RouterCallError } from './errors/router-status.mapping';

async function main(): Promise<void> {
  const config = loadGatewayConfig(process.env);
  const logger = createLogger('gateway', { level: config.LOG_LEVEL });
  const metrics = new ServiceMetrics();
  const httpDuration = metrics.get('httpRequestDuration');
  const gateway = await createGatewayApp(config, {
    logger,
    observeHttp: (method, route, status, seconds) => httpDuration.observe({ method, route, status: String(status), task: taskOfRoute(route) }, seconds),
  });
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
