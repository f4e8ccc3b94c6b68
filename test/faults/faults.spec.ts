import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisKeys } from '@rsmoe/contracts';
import { MeshLauncher, type ServiceEvent } from '../../apps/cli/src/mesh/mesh-launcher';
import { freePort } from '../../apps/cli/src/mesh/redis-locator';
import { PACK_DIR, testImage } from '../e2e/mesh-fixture';
import { PrivateRedis } from '../../apps/cli/src/mesh/private-redis';
import { SteadyLoad, summarise, type LoadOutcome } from './steady-load';

/**
 * Faults under a steady load, on real processes and a private Redis: kill -9 an expert, the aggregator and
 * the router, restart Redis, SIGTERM an expert mid-batch. The processes are killed behind the launcher's
 * back, as a crash is, and the launcher's own supervision (`rsmoe start`'s restart with backoff) brings them
 * back; the mesh must then serve a complete answer again.
 *
 * What is asserted, for every request of every phase: an answer within its deadline + HANG_SLACK_MS, a
 * status from DOCUMENTED_STATUSES, one answer per request id, and the answer is the one result stored.
 * Per fault: a dead expert gives degraded answers (errorCode expert_unavailable) well before the deadline,
 * and the mesh answers complete again within RECOVERY_LIMIT_MS of the fault.
 */

/** Each request's budget (the gateway's timeoutMs). */
const TIMEOUT_MS = 5_000;
/** A request unanswered this long after its deadline hangs. */
const HANG_SLACK_MS = 1_500;
/** After each fault the mesh answers complete again within this time, restart included (stated in the README). */
const RECOVERY_LIMIT_MS = 30_000;
/** The router polls expert queues every second: a dead expert is routed around within this. */
const ROUTE_AROUND_MS = 2_500;
/** Statuses the gateway documents for a valid request (apps/gateway/README.md). */
const DOCUMENTED_STATUSES = new Set([200, 408, 429, 502, 503]);
/**
 * Known gaps of the gateway, each allowed in one phase only (reported to its owner; remove once fixed). None
 * open: a Redis restart that loses a just-stored image is now 503 `image_lost`, and an overload refusal drains
 * the body before closing, so a client still writing reads the 429.
 */
const KNOWN_GAPS: Record<string, { status: number; code: string }[]> = {};

function documented(outcome: LoadOutcome): boolean {
  return DOCUMENTED_STATUSES.has(outcome.status) || (KNOWN_GAPS[outcome.phase] ?? []).some((gap) => gap.status === outcome.status && gap.code === outcome.code);
}
const CONCURRENCY = 4;
/** The router's MAX_WAITING_PER_EXPERT here: above what the steady load queues, reached when an expert stalls. */
const MAX_WAITING_PER_EXPERT = 12;
/**
 * The launcher's restart backoff, its first delay long enough to watch the mesh without the process (the
 * dead-expert assertions need a few seconds of it).
 */
const RESTART_POLICY = { initialDelayMs: 3_000, maxDelayMs: 10_000, stableAfterMs: 60_000, loudAfterCrashes: 5 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.sequential('faults under a steady load (private redis-server, real processes)', { timeout: 60_000 }, () => {
  let redis: PrivateRedis;
  let mesh: MeshLauncher;
  let load: SteadyLoad;
  let client: Redis;
  let prefix: string;
  const logs: string[] = [];
  const report: string[] = [];
  const events: ServiceEvent[] = [];
  const suiteStarted = Date.now();

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    prefix = `faults${randomBytes(4).toString('hex')}`;
    const gatewayPort = await freePort();
    let routerPort = await freePort();
    while (routerPort === gatewayPort) routerPort = await freePort();
    mesh = new MeshLauncher({
      packDir: PACK_DIR,
      redisUrl: redis.url,
      keyPrefix: prefix,
      queuePrefix: prefix,
      gatewayPort,
      routerPort,
      env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1', METRICS_HOST: '127.0.0.1' },
      onLog: (service, line) => {
        logs.push(`[${service}] ${line}`);
        if (logs.length > 400) logs.shift();
      },
      readyTimeoutMs: 90_000,
      serviceEnv: { router: { MAX_WAITING_PER_EXPERT: String(MAX_WAITING_PER_EXPERT) } },
      restart: RESTART_POLICY,
      onServiceEvent: (event) => events.push(event),
    });
    await mesh.start();
    client = new Redis(redis.url, { maxRetriesPerRequest: null });
    client.on('error', () => undefined);
    const images = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(testImage));
    load = new SteadyLoad({ url: mesh.gatewayUrl, concurrency: CONCURRENCY, images, timeoutMs: TIMEOUT_MS, hangSlackMs: HANG_SLACK_MS });
    load.start();
  }, 120_000);

  afterAll(async () => {
    await load?.stop();
    await mesh?.stop();
    client?.disconnect();
    await redis?.stop('SIGKILL');
    console.log(`\nfaults under a steady load of ${CONCURRENCY} concurrent caption requests (timeoutMs ${TIMEOUT_MS}):\n${report.join('\n')}\nsuite ${Math.round((Date.now() - suiteStarted) / 1000)} s`);
  }, 60_000);

  /** The outcomes of one phase, checked for what holds under every fault. */
  async function checkPhase(phase: string): Promise<LoadOutcome[]> {
    const outcomes = load.outcomes.filter((outcome) => outcome.phase === phase);
    report.push(summarise(load.outcomes, phase));
    expect(outcomes.length, `${phase}: no request was sent`).toBeGreaterThan(0);
    expect(outcomes.filter((outcome) => outcome.hung), `${phase}: hung requests`).toEqual([]);
    const undocumented = outcomes.filter((outcome) => !documented(outcome));
    expect(undocumented.map(({ status, code }) => ({ status, code })), `${phase}: undocumented statuses`).toEqual([]);
    for (const outcome of outcomes) expect(outcome.latencyMs, `${phase}: answered after its deadline`).toBeLessThan(TIMEOUT_MS + HANG_SLACK_MS);
    // The answer is the one result stored for its request (write-once: nobody fused a second one).
    for (const outcome of outcomes.filter((o) => o.status === 200)) {
      const stored = await client.get(createRedisKeys(prefix).resultKey(outcome.requestId!));
      if (stored === null) continue; // lost with a Redis restart
      const result = JSON.parse(stored) as { caption?: string; experts: { expertId: string; status: string }[] };
      expect({ caption: result.caption, statuses: result.experts.map((e) => e.status) }).toEqual({
        caption: outcome.caption,
        statuses: outcome.experts!.map((e) => e.status),
      });
    }
    return outcomes;
  }

  /** Waits until a request sent after `sinceMs` is answered complete (200, not degraded); returns when it was sent. */
  async function servesAgain(phase: string, sinceMs: number): Promise<number> {
    const deadline = Date.now() + RECOVERY_LIMIT_MS;
    for (;;) {
      const ok = load.outcomes.find((o) => o.phase === phase && o.sentAtMs >= sinceMs && o.status === 200 && !o.degraded);
      if (ok) return ok.sentAtMs;
      if (Date.now() > deadline) throw new Error(`${phase}: no complete answer within ${RECOVERY_LIMIT_MS} ms\n${logs.slice(-40).join('\n')}`);
      await sleep(100);
    }
  }

  /**
   * Sends `signal` to a service's process behind the launcher's back (a crash, as far as it knows) and
   * returns a promise of the launcher's restart: its exit event, then the moment it is ready again.
   */
  function crash(service: string, signal: NodeJS.Signals): { exited: Promise<Extract<ServiceEvent, { kind: 'exited' }>>; restarted: Promise<number> } {
    const from = events.length;
    process.kill(mesh.pids[service], signal);
    const waitFor = async <Kind extends ServiceEvent['kind']>(kind: Kind): Promise<Extract<ServiceEvent, { kind: Kind }>> => {
      const deadline = Date.now() + RECOVERY_LIMIT_MS;
      for (;;) {
        const event = events.slice(from).find((e) => e.kind === kind && e.service === service);
        if (event) return event as Extract<ServiceEvent, { kind: Kind }>;
        const failed = events.slice(from).find((e) => e.kind === 'restart-failed' && e.service === service);
        if (failed) throw new Error(`${service} did not come back: ${JSON.stringify(failed)}`);
        if (Date.now() > deadline) throw new Error(`${service}: no ${kind} event within ${RECOVERY_LIMIT_MS} ms\n${logs.slice(-40).join('\n')}`);
        await sleep(50);
      }
    };
    return { exited: waitFor('exited'), restarted: waitFor('restarted').then(() => load.now()) };
  }

  /**
   * Runs one fault: `inject` at once, resolving when the mesh is whole again (`restoredAt`, on the load's
   * clock); then waits for a complete answer sent after that. Returns the phase outcomes.
   */
  async function fault(phase: string, inject: () => Promise<number>) {
    load.phase = phase;
    await sleep(500);
    const injectedAt = load.now();
    const restoreAt = await inject();
    const back = await servesAgain(phase, restoreAt);
    const recoveryMs = Math.round(back - injectedAt);
    // A little steady traffic after recovery, then the next phase.
    await sleep(500);
    load.phase = `${phase}: after`;
    const outcomes = await checkPhase(phase);
    report.push(`${''.padEnd(24)}serves complete answers again ${recoveryMs} ms after the fault (limit ${RECOVERY_LIMIT_MS} ms)`);
    expect(recoveryMs).toBeLessThan(RECOVERY_LIMIT_MS);
    return { outcomes, injectedAt, restoreAt };
  }

  it('serves a steady load before any fault', async () => {
    load.phase = 'baseline';
    await sleep(3_000);
    load.phase = 'baseline: after';
    const outcomes = await checkPhase('baseline');
    expect(outcomes.filter((o) => o.status === 200 && !o.degraded).length).toBeGreaterThan(0);
  });

  it('kill -9 an expert: degraded answers at once, naming it unavailable; complete again once the launcher restarted it', async () => {
    const { outcomes, injectedAt, restoreAt } = await fault('kill -9 expert.relation', async () => {
      const { restarted } = crash('expert.relation', 'SIGKILL');
      // The load's own requests may all be waiting for the expert that was just killed (until their fuse
      // point): probe beside them once the router's poll has seen the worker gone.
      await sleep(ROUTE_AROUND_MS);
      await load.probe(CONCURRENCY);
      return restarted;
    });
    // Sent once the router's poll saw the worker gone, before the restart: routed around at once.
    // An expert down is a degraded answer, never an error.
    expect(outcomes.filter((o) => o.status !== 200).map(({ status, code }) => ({ status, code }))).toEqual([]);
    const whileDead = outcomes.filter((o) => o.sentAtMs > injectedAt + ROUTE_AROUND_MS && o.sentAtMs + o.latencyMs < restoreAt);
    expect(whileDead.length).toBeGreaterThan(0);
    for (const outcome of whileDead) {
      expect(outcome.status).toBe(200);
      expect(outcome.missingExperts).toEqual(['relation']);
      expect(outcome.experts?.find((e) => e.expertId === 'relation')).toMatchObject({ status: 'skipped', errorCode: 'expert_unavailable' });
      // Well before the deadline: nobody waited for the dead expert.
      expect(outcome.latencyMs).toBeLessThan(TIMEOUT_MS / 2);
    }
  });

  it('kill -9 the aggregator: no request hangs, and the mesh serves again once restarted', async () => {
    const { outcomes } = await fault('kill -9 aggregator', () => crash('aggregator', 'SIGKILL').restarted);
    // With every expert answering, the router fuses and stores by itself: the aggregator's absence costs nothing.
    expect(outcomes.filter((o) => o.status !== 200).map(({ status, code }) => ({ status, code }))).toEqual([]);
  });

  it('kill -9 the router: refused quickly while it is down, served again once restarted', async () => {
    const { outcomes, injectedAt, restoreAt } = await fault('kill -9 router', () => crash('router', 'SIGKILL').restarted);
    const whileDown = outcomes.filter((o) => o.sentAtMs > injectedAt + 200 && o.sentAtMs + o.latencyMs < restoreAt);
    for (const outcome of whileDown) expect(outcome.status).toBe(503);
  });

  it('restart Redis: no request hangs, and the mesh serves again by itself', async () => {
    await fault('restart redis', async () => {
      await redis.restart(1_000);
      return load.now();
    });
  });

  it('SIGTERM an expert mid-batch: it drains and exits 0, in-flight requests are answered, then it is routed around', async () => {
    let exitCode: number | null = null;
    const { outcomes } = await fault('SIGTERM expert.object', async () => {
      // Mid-batch: wait until the expert holds a job.
      await expect.poll(async () => client.llen(`${prefix}:expert.object:active`), { timeout: 5_000, interval: 20 }).toBeGreaterThan(0);
      const { exited, restarted } = crash('expert.object', 'SIGTERM');
      exitCode = (await exited).code;
      await sleep(ROUTE_AROUND_MS);
      await load.probe(CONCURRENCY);
      return restarted;
    });
    expect(exitCode).toBe(0);
    expect(outcomes.filter((o) => o.status !== 200).map(({ status, code }) => ({ status, code }))).toEqual([]);
    expect(outcomes.filter((o) => o.status === 200 && o.missingExperts?.includes('object') && o.experts?.some((e) => e.errorCode === 'expert_unavailable')).length).toBeGreaterThan(0);
  });

  it('a stalled expert (SIGSTOP): its queue fills to the limit, then 429 overloaded with Retry-After at once; served again after SIGCONT', async () => {
    const pid = mesh.pids['expert.theme'];
    const { outcomes, injectedAt } = await fault('SIGSTOP expert.theme', async () => {
      process.kill(pid, 'SIGSTOP');
      try {
        // Alive to the router (its connection stays) but taking nothing: every request queues a job for it.
        const burst = load.probe(2 * CONCURRENCY);
        const deadline = Date.now() + RECOVERY_LIMIT_MS;
        while (!load.outcomes.some((o) => o.phase === 'SIGSTOP expert.theme' && o.status === 429)) {
          if (Date.now() > deadline) throw new Error('no 429 while expert.theme was stalled');
          await sleep(100);
        }
        await burst;
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      return load.now();
    });
    const refused = outcomes.filter((o) => o.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    for (const outcome of refused) {
      expect(outcome.code).toBe('overloaded');
      expect(Number(outcome.retryAfter)).toBeGreaterThanOrEqual(1);
      // Refused up front, never after waiting.
      expect(outcome.latencyMs).toBeLessThan(1_000);
      expect(outcome.sentAtMs).toBeGreaterThan(injectedAt);
    }
  });

  it('answered every request once, in time, with a documented status: no request id answered twice', async () => {
    await load.stop();
    expect(load.outcomes.filter((o) => o.hung)).toEqual([]);
    expect(load.outcomes.filter((o) => !documented(o)).map(({ phase, status, code }) => ({ phase, status, code }))).toEqual([]);
    const ids = load.outcomes.filter((o) => o.status === 200).map((o) => o.requestId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
