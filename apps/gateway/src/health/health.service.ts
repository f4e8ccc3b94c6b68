import { Inject, Injectable } from '@nestjs/common';
import { TASKS, expertTasksOf, type Task } from '@rsmoe/contracts';
import type { ExpertInfoJson, ExpertListJson, RouterPort } from '../adapters/router.port';
import type { GatewayConfig } from '../gateway.config';
import { GATEWAY_CONFIG, REDIS_PROBE, ROUTER } from '../tokens';

/** What readiness needs from Redis (an ioredis client fits). */
export interface RedisProbe {
  ping(): Promise<string>;
}

export interface CheckResult {
  ok: boolean;
  /** `PONG`, `SERVING`, a summary of the experts, or why the check failed. */
  detail: string;
}

/** The experts check: every task of the pack has at least one expert with a live worker. */
export interface ExpertsCheck extends CheckResult {
  /** Experts whose queue had no live worker at the router's last poll (routed around), in fusion order. */
  down: string[];
  /** Tasks for which every expert is down (readiness fails). */
  unservedTasks: Task[];
}

export interface Readiness {
  ready: boolean;
  /** Ready, but some experts are down: fewer experts answer (results say `degraded`). */
  degraded: boolean;
  checks: { redis: CheckResult; router: CheckResult; experts: ExpertsCheck };
}

/** How long one ListExperts answer serves readiness probes, in ms (probes never hammer the router). */
export const EXPERT_LIST_CACHE_MS = 1_000;

/** The request tasks an expert serves; a router that does not say (an older one) means caption and vqa. */
function tasksOf(expert: ExpertInfoJson): readonly Task[] {
  if (expert.tasks.length === 0) return ['caption', 'vqa'];
  return TASKS.filter((task) => expertTasksOf(task).some((expertTask) => expert.tasks.includes(expertTask)));
}

/** An expert is down when the router's last poll found no worker on its queue (unknown counts as live, as in the router). */
const isDown = (expert: ExpertInfoJson): boolean => expert.liveWorkers === 0;

/** The experts check of one ListExperts answer. A task no expert of the pack serves is not "down". */
export function checkExperts(list: ExpertListJson): ExpertsCheck {
  const down = list.experts.filter(isDown).map((expert) => expert.id);
  const unservedTasks = TASKS.filter((task) => {
    const owners = list.experts.filter((expert) => tasksOf(expert).includes(task));
    return owners.length > 0 && owners.every(isDown);
  });
  let detail: string;
  if (unservedTasks.length > 0) detail = `no live expert for ${unservedTasks.join(', ')} (down: ${down.join(', ')})`;
  else if (down.length > 0) detail = `degraded: ${down.join(', ')} down; every task still has a live expert`;
  else detail = `${list.experts.length} expert${list.experts.length === 1 ? '' : 's'}, none known down`;
  return { ok: unservedTasks.length === 0, detail, down, unservedTasks };
}

/**
 * Readiness: Redis answers PING, the router's grpc.health.v1 check says SERVING (its pack is loaded), and
 * every task has at least one expert with a live worker (the router's ListExperts, cached for
 * EXPERT_LIST_CACHE_MS). Experts down while each task is still served make readiness `degraded`, not failed.
 */
@Injectable()
export class HealthService {
  private expertList: { fetchedAtMs: number; answer: Promise<ExpertListJson | Error> } | undefined;

  constructor(
    @Inject(REDIS_PROBE) private readonly redis: RedisProbe,
    @Inject(ROUTER) private readonly router: RouterPort,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  async readiness(): Promise<Readiness> {
    const timeoutMs = this.config.READY_CHECK_TIMEOUT_MS;
    const [redis, router, experts] = await Promise.all([this.checkRedis(timeoutMs), this.checkRouter(timeoutMs), this.checkExperts(timeoutMs)]);
    return { ready: redis.ok && router.ok && experts.ok, degraded: experts.down.length > 0, checks: { redis, router, experts } };
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

  private async checkExperts(timeoutMs: number): Promise<ExpertsCheck> {
    const list = await this.listExperts(timeoutMs);
    if (list instanceof Error) return { ok: false, detail: `ListExperts failed: ${list.message}`, down: [], unservedTasks: [] };
    return checkExperts(list);
  }

  /** One ListExperts call serves every probe for EXPERT_LIST_CACHE_MS (an answer in flight is shared). */
  private listExperts(timeoutMs: number): Promise<ExpertListJson | Error> {
    const now = Date.now();
    if (this.expertList && now - this.expertList.fetchedAtMs < EXPERT_LIST_CACHE_MS) return this.expertList.answer;
    const answer = this.router.listExperts({ requestId: 'readiness', deadlineUnixMs: now + timeoutMs }).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
    this.expertList = { fetchedAtMs: now, answer };
    return answer;
  }
}
