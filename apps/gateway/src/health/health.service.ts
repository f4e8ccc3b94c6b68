import { Inject, Injectable } from '@nestjs/common';
import type { RouterPort } from '../adapters/router.port';
import type { GatewayConfig } from '../gateway.config';
import { GATEWAY_CONFIG, REDIS_PROBE, ROUTER } from '../tokens';

/** What readiness needs from Redis (an ioredis client fits). */
export interface RedisProbe {
  ping(): Promise<string>;
}

export interface CheckResult {
  ok: boolean;
  /** `PONG`, `SERVING`, or why the check failed. */
  detail: string;
}

export interface Readiness {
  ready: boolean;
  checks: { redis: CheckResult; router: CheckResult };
}

/** Readiness: Redis answers PING and the router's grpc.health.v1 check says SERVING (its pack is loaded). */
@Injectable()
export class HealthService {
  constructor(
    @Inject(REDIS_PROBE) private readonly redis: RedisProbe,
    @Inject(ROUTER) private readonly router: RouterPort,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  async readiness(): Promise<Readiness> {
    const timeoutMs = this.config.READY_CHECK_TIMEOUT_MS;
    const [redis, router] = await Promise.all([this.checkRedis(timeoutMs), this.checkRouter(timeoutMs)]);
    return { ready: redis.ok && router.ok, checks: { redis, router } };
  }

  private async checkRedis(timeoutMs: number): Promise<CheckResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const reply = await Promise.race([this.redis.ping(), timeout]);
      return { ok: reply === 'PONG', detail: reply };
    } catch (error) {
      return { ok: false, detail: (error as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  private async checkRouter(timeoutMs: number): Promise<CheckResult> {
    const health = await this.router.checkHealth(Date.now() + timeoutMs);
    return { ok: health.serving, detail: health.status };
  }
}
