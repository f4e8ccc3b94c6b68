import { Controller, Get, Inject } from '@nestjs/common';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import { HealthService, type Readiness } from './health.service';

/** The body of a 200 readiness answer. */
export interface ReadyBody {
  status: 'ready';
  /** Some experts are down but every task still has a live one. */
  degraded: boolean;
  /** The experts down (no live worker at the router's last poll). */
  down: string[];
  checks: Readiness['checks'];
}

/** Kubernetes-style probes: liveness (the process answers) and readiness (Redis, router and an expert per task usable). */
@Controller('v2/health')
export class HealthController {
  constructor(@Inject(HealthService) private readonly health: HealthService) {}

  @Get('live')
  live(): { status: 'live' } {
    return { status: 'live' };
  }

  /** 200 `{status: "ready", degraded, down, checks}`, else 503 not_ready with the checks in `error.details`. */
  @Get('ready')
  async ready(): Promise<ReadyBody> {
    const { ready, degraded, checks } = await this.health.readiness();
    if (!ready) {
      const failed = Object.entries(checks)
        .filter(([, check]) => !check.ok)
        .map(([name, check]) => `${name}: ${check.detail}`);
      throw new GatewayError(503, ERROR_CODES.notReady, `not ready: ${failed.join('; ')}`, { details: { checks } });
    }
    return { status: 'ready', degraded, down: checks.experts.down, checks };
  }
}
