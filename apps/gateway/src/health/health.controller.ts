import { Controller, Get, Inject } from '@nestjs/common';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import { HealthService, type Readiness } from './health.service';

/** Kubernetes-style probes: liveness (the process answers) and readiness (Redis and router usable). */
@Controller('v2/health')
export class HealthController {
  constructor(@Inject(HealthService) private readonly health: HealthService) {}

  @Get('live')
  live(): { status: 'live' } {
    return { status: 'live' };
  }

  /** 200 `{status: "ready", checks}`, else 503 not_ready with the checks in `error.details`. */
  @Get('ready')
  async ready(): Promise<{ status: 'ready'; checks: Readiness['checks'] }> {
    const { ready, checks } = await this.health.readiness();
    if (!ready) {
      const failed = Object.entries(checks)
        .filter(([, check]) => !check.ok)
        .map(([name, check]) => `${name}: ${check.detail}`);
      throw new GatewayError(503, ERROR_CODES.notReady, `not ready: ${failed.join('; ')}`, { details: { checks } });
    }
    return { status: 'ready', checks };
  }
}
