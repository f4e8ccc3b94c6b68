import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger';
import type { ServiceMetrics } from './metrics';

/** One named readiness check; `detail` says what failed. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

/** The readiness check every Redis-backed service has: the server answers PING. */
export function redisReadiness(redis: { ping(): Promise<unknown> }): ReadinessCheck {
  return { name: 'redis', check: async () => void (await redis.ping()) };
}

export interface OpsServerOptions {
  /** 0 picks a free port (reported back). */
  port: number;
  host: string;
  metrics: ServiceMetrics;
  /**
   * All must pass for /health/ready to answer 200; each is bounded by checkTimeoutMs. Absent when the
   * service answers readiness on its own API port (the gateway): /health/ready then says where.
   */
  readiness?: readonly ReadinessCheck[];
  readinessElsewhere?: string;
  /** Bound of each readiness check, in ms. Default 2000. */
  checkTimeoutMs?: number;
  logger: Logger;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The operations endpoint of a service, apart from its API port: GET /metrics (Prometheus text format),
 * GET /health/live (the process answers) and GET /health/ready (every readiness check passes; 503 with
 * the failing checks otherwise). This is what Kubernetes probes and Prometheus scrape.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const send = (status: number, contentType: string, body: string): void => {
      response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
      response.end(body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(405, 'application/json', JSON.stringify({ error: { code: 'method_not_allowed', message: `${request.method} is not allowed; use GET` } }));
      return;
    }
    if (path === '/metrics') {
      options.metrics.expose().then(
        ({ contentType, body }) => send(200, contentType, body),
        (error: unknown) => {
          options.logger.error('metrics collection failed', { error });
          send(500, 'text/plain', 'metrics collection failed\n');
        },
      );
    } else if (path === '/health/live') {
      send(200, 'application/json', JSON.stringify({ status: 'live' }));
    } else if (path === '/health/ready') {
      const checks = options.readiness;
      if (!checks) {
        send(404, 'application/json', JSON.stringify({ error: { code: 'not_found', message: `readiness is served at ${options.readinessElsewhere ?? 'the API port'}` } }));
        return;
      }
      void readiness(checks, options.checkTimeoutMs ?? 2_000).then((failures) =>
        failures.length === 0
          ? send(200, 'application/json', JSON.stringify({ status: 'ready' }))
          : send(503, 'application/json', JSON.stringify({ status: 'not_ready', failures })),
      );
    } else {
      send(404, 'application/json', JSON.stringify({ error: { code: 'not_found', message: `no route ${path}; try /metrics, /health/live or /health/ready` } }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function readiness(checks: readonly ReadinessCheck[], timeoutMs: number): Promise<{ check: string; detail: string }[]> {
  const results = await Promise.all(
    checks.map(async ({ name, check }) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([check(), timeout]);
        return undefined;
      } catch (error) {
        return { check: name, detail: error instanceof Error ? error.message : String(error) };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return results.filter((result): result is { check: string; detail: string } => result !== undefined);
}
