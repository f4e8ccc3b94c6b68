import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { FlowProducer, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { RedisBlobStore } from '@rsmoe/blobstore';
import { parseExposition } from '@rsmoe/observability';
import {
  AGGREGATE_QUEUE,
  JOB_NAMES,
  expertJobId,
  expertQueueName,
  loadPackManifest,
  parseRouterInboxMessage,
  type ExpertJobData,
  type ImageRefJson,
} from '@rsmoe/contracts';
import { InstructionRouter } from '@rsmoe/routing';
import { RouterClassifier, VlmRuntime, type GenerationRequest, type ImageFeatures } from '@rsmoe/runtime';
import { MeshLauncher, serviceNodeFlags } from '../mesh/mesh-launcher';
import { PrivateRedis } from '../mesh/private-redis';
import { freePort } from '../mesh/redis-locator';
import { counterDelta, measureCoreContention, measureWakeupCost, nodeFlagsLine, runTimesOf, wakeupsOf } from './machine-facts';
import { batchingGoal, formatGoalLine, goalMet, medianGoals, meshGoals, type BatchingComparison, type GoalCheck, type RuntimeBatchGain } from './mesh-goals';
import { HopFloor } from './hop-floor';
import { snapshotRedis, usageBetween } from './redis-stats';
import { median, percentile } from './stats';

const REPO_ROOT = resolve(__dirname, '../../../..');

/**
 * The images a mesh benchmark sends: the pack's own sample scenes when it has them (`golden/golden-<n>.png`,
 * as models/demo does: its experts then write the captions they were trained for, not answers to images of
 * another distribution), else the fixture images.
 */
export function packBenchImages(packDir: string): string[] {
  const golden = resolve(packDir, 'golden');
  const own = existsSync(golden)
    ? readdirSync(golden)
        .filter((name) => /^golden-\d+\.png$/.test(name))
        .sort()
        .map((name) => resolve(golden, name))
    : [];
  return own.length > 0 ? own : [0, 1, 2].map((index) => resolve(REPO_ROOT, `models/fixtures/tiny-llava/golden-${index}.png`));
}

export interface MeshBenchmarkOptions {
  packDir: string;
  /**
   * The Redis to use; absent: a private redis-server on a free port, started and stopped by the run, so that
   * Redis's CPU and command counts are the mesh's alone.
   */
  redisUrl?: string;
  imagePaths: string[];
  concurrency: number[];
  /** Requests per concurrency level and round (after warm-up). */
  requests: number;
  /**
   * Rounds of the mesh and in-process levels, taken in turns (mesh c=1, in-process c=1, …, then again), so a
   * slow moment of the machine falls on both sides of a ratio; each goal reads its median round.
   */
  rounds: number;
  /**
   * Requests before measuring, per path. A service runs warm: until V8 has optimised the hot code, a
   * request costs several times the CPU (six processes warm up more slowly than one).
   */
  warmup: number;
  /**
   * Requests through the mesh before measuring, in chunks of `warmup` at c=8. Each service's V8 optimises its
   * own copy of the hot code and its compiler threads keep working for thousands of requests (the mesh's CPU
   * per request fell by a fifth over its first 3,000 here): absent, `warmup` alone.
   */
  meshWarmup?: number;
  /**
   * One expert alone at `concurrency`, with its default batching and with MAX_BATCH_SIZE=1, side by side:
   * `rounds` turns of `requests` each (after `warmup`), the median round of each reported; absent: not run.
   */
  batching?: { expertId?: string; concurrency: number; requests: number; warmup: number; rounds: number };
  /** Mesh ÷ in-process throughput goal at the highest level (0.8 on the tiny pack, 0.9 where compute is real). */
  throughputGoal: number;
  log: (line: string) => void;
}

export interface MeshBenchmarkReport {
  rows: LatencyRow[];
  batching?: BatchingComparison & { runtimeGain: RuntimeBatchGain };
  goals: (GoalCheck & { met: boolean })[];
}

export interface LatencyRow {
  path: string;
  concurrency: number;
  /** The round it was measured in (1 for the raw paths, measured once). */
  round: number;
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  /** CPU time per request of the processes doing the work (the mesh's services; this process in-process). */
  cpuMsPerRequest?: number;
  /**
   * Times per request a thread of the path's processes (and of the private Redis) went to sleep and was woken
   * again: the hops' hand-offs, each a wake-up at low load.
   */
  wakeupsPerRequest?: number;
  /** The same per service of the mesh (gateway, router, aggregator, expert.<id>). */
  cpuMsPerRequestByService?: Record<string, number>;
  /**
   * Wall time per request each routed expert's model computed (vision encode, prefill, decode), measured at
   * the lowest level only (one job per batch there): the mesh's experts side by side, in-process one after another.
   */
  generationMsPerRequestByExpert?: Record<string, number>;
  /** Redis's CPU per request (INFO used_cpu_sys + used_cpu_user); paths that use Redis only. */
  redisCpuMsPerRequest?: number;
  /** Redis commands per request (INFO commandstats, commands inside scripts included). */
  redisCommandsPerRequest?: number;
  /** The same, per command name, most called first. */
  redisCommands?: Record<string, number>;
}

/** How long the mesh's idle CPU is sampled after warm-up, in ms (its background: timers, pollers, V8's threads). */
const IDLE_SAMPLE_MS = 5_000;

/**
 * From now until called: each process's CPU per second, in ms, from the scheduler's exact count (an idle
 * service's few ms a second are below what clock-tick samples resolve in a few seconds).
 */
function idleCpuMsPerSecond(pids: Record<string, number>): () => Record<string, number> {
  const started = performance.now();
  const before = Object.entries(pids).map(([name, pid]) => [name, runTimesOf([pid])] as const);
  return () => {
    const seconds = (performance.now() - started) / 1000;
    return Object.fromEntries(
      before.map(([name, threads]) => {
        const after = runTimesOf([pids[name]]);
        return [name, threads && after ? counterDelta(threads, after) / seconds : Number.NaN];
      }),
    );
  };
}

/** How long a level's CPU and Redis meters wait after its last answer, in ms (idle Redis: ~26 commands/s). */
const SETTLE_MS = 250;

/** Runs `total` calls of `once` with `concurrency` in flight; returns per-call latencies and throughput. */
async function drive(concurrency: number, total: number, once: (index: number) => Promise<void>): Promise<{ latencies: number[]; perSecond: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const index = next++;
        const t0 = performance.now();
        await once(index);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { latencies: latencies.sort((a, b) => a - b), perSecond: total / seconds };
}

/**
 * Sends `total` requests through the mesh at c=8 in chunks of `chunk`, then prints the services' CPU per
 * request in the first and the last chunk, so a run shows whether its services had settled.
 */
async function warmUpMesh(total: number, chunk: number, once: (index: number) => Promise<void>, cpuSeconds: () => number | undefined, log: (line: string) => void): Promise<void> {
  const perChunk: (number | undefined)[] = [];
  chunk = Math.max(1, chunk);
  for (let sent = 0; sent < total; sent += chunk) {
    const size = Math.min(chunk, total - sent);
    const before = cpuSeconds();
    await drive(8, size, (index) => once(sent + index));
    const after = cpuSeconds();
    perChunk.push(before !== undefined && after !== undefined ? ((after - before) * 1000) / size : undefined);
  }
  const [first, last] = [perChunk[0], perChunk[perChunk.length - 1]];
  if (perChunk.length > 1 && first !== undefined && last !== undefined) {
    log(`mesh warm-up      ${total} requests at c=8: the services' cpu ${first.toFixed(1)} ms/req in the first ${chunk}, ${last.toFixed(1)} in the last`);
  }
}

/** Removes every key a benchmark run wrote under its own prefix. */
async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** CPU seconds (user + system) used so far by these processes; undefined where /proc is not readable. */
function cpuSecondsOf(pids: number[]): number | undefined {
  try {
    // Fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux).
    return pids.reduce((sum, pid) => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return sum + (Number(fields[11]) + Number(fields[12])) / 100;
    }, 0);
  } catch {
    return undefined;
  }
}

/** The cost of one BullMQ hop: no-op workers on a prefix of their own, replies pushed over pub/sub. */
async function rawQueuePaths(redisUrl: string, expertIds: string[]) {
  const prefix = `benchraw${randomBytes(4).toString('hex')}`;
  const connections: Redis[] = [];
  const connect = (): Redis => {
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    connections.push(redis);
    return redis;
  };
  const publisher = connect();
  const subscriber = connect();
  const inbox = `${prefix}:inbox`;
  // requestId -> replies still missing, and the resolve to call when none are.
  const waiters = new Map<string, { missing: number; done: () => void }>();
  subscriber.on('message', (_channel: string, requestId: string) => {
    const waiter = waiters.get(requestId);
    if (waiter && --waiter.missing === 0) waiter.done();
  });
  await subscriber.subscribe(inbox);
  const workers = [
    ...expertIds.map(
      (id) =>
        new Worker(
          expertQueueName(id),
          async (job) => {
            if (job.data.reply) await publisher.publish(inbox, job.data.id);
            return { ok: true };
          },
          { connection: connect(), prefix, concurrency: 64 },
        ),
    ),
    new Worker(
      AGGREGATE_QUEUE,
      async (job) => {
        await job.getChildrenValues();
        await publisher.publish(inbox, job.data.id);
      },
      { connection: connect(), prefix, concurrency: 64 },
    ),
  ];
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  const flows = new FlowProducer({ connection: connect(), prefix });
  const queueConnection = connect();
  const queues = expertIds.map((expertId) => new Queue(expertQueueName(expertId), { connection: queueConnection, prefix }));
  const flow = async (index: number): Promise<void> => {
    const id = `raw${index}x${randomBytes(3).toString('hex')}`;
    const done = new Promise<void>((resolve) => waiters.set(id, { missing: 1, done: resolve }));
    await flows.add({
      name: 'fuse',
      queueName: AGGREGATE_QUEUE,
      data: { id },
      opts: { jobId: `${id}.aggregate`, removeOnComplete: true },
      children: expertIds.map((expertId) => ({
        name: 'generate',
        queueName: expertQueueName(expertId),
        data: { id, reply: false },
        opts: { jobId: `${id}.${expertId}`, ignoreDependencyOnFailure: true, removeOnComplete: true },
      })),
    });
    await done;
    waiters.delete(id);
  };
  return {
    /** A flow: the parent and its children are added, the children finish, the parent replies. */
    flow,
    /** The mesh's shape: one plain job per expert, added together; every job replies to the inbox. */
    async jobs(index: number): Promise<void> {
      const id = `rawj${index}x${randomBytes(3).toString('hex')}`;
      const done = new Promise<void>((resolve) => waiters.set(id, { missing: expertIds.length, done: resolve }));
      await Promise.all(expertIds.map((expertId, position) => queues[position].add('generate', { id, reply: true }, { jobId: `${id}.${expertId}`, removeOnComplete: true })));
      await done;
      waiters.delete(id);
    },
    async close(): Promise<void> {
      await Promise.all(workers.map((worker) => worker.close()));
      await Promise.all(queues.map((queue) => queue.close()));
      await flows.close();
      await deleteKeys(publisher, prefix);
      for (const redis of connections) redis.disconnect();
    },
  };
}

/** Scrapes a service's /metrics once; the function it gives sums a metric's samples over all their labels. */
async function scrapeTotals(metricsUrl: string): Promise<(name: string) => number> {
  const samples = parseExposition(await (await fetch(`${metricsUrl}/metrics`)).text());
  return (name) => samples.filter((sample) => sample.name === name).reduce((sum, sample) => sum + sample.value, 0);
}

/** One expert's throughput as `LoneExpert.drive` measured it. */
export interface LoneExpertRun {
  perSecond: number;
  /** CPU of the expert's process (all its threads) per request; undefined where /proc is not readable. */
  expertCpuMsPerRequest: number | undefined;
  /** Jobs per generation call over the run, from the expert's own `rsmoe_expert_batch_size` histogram. */
  meanBatchSize: number;
}

/**
 * One expert alone (its own process, nothing else of the mesh) on a queue prefix of its own, fed jobs
 * straight into its queue, each answered by its partial on an inbox channel. Two of them (say, default
 * batching and MAX_BATCH_SIZE=1) can be started side by side and driven in turns, so that both sides see the
 * same machine.
 */
export class LoneExpert {
  private readonly prefix = `benchx${randomBytes(4).toString('hex')}`;
  private readonly service: string;
  private readonly process: MeshLauncher;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly queue: Queue;
  private readonly waiters = new Map<string, () => void>();
  private readonly generation: ExpertJobData['generation'];
  private refs: ImageRefJson[] = [];
  private sent = 0;

  constructor(private readonly options: { packDir: string; redisUrl: string; expertId: string; prompt: string; env: Record<string, string>; log: (line: string) => void }) {
    this.service = `expert.${options.expertId}`;
    this.generation = loadPackManifest(options.packDir).experts.find((expert) => expert.id === options.expertId)?.generation ?? {};
    this.process = new MeshLauncher({
      packDir: options.packDir,
      redisUrl: options.redisUrl,
      keyPrefix: this.prefix,
      queuePrefix: this.prefix,
      gatewayPort: 0,
      routerPort: 0,
      only: [this.service],
      env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1', ...options.env },
      onLog: (name, line) => (/"level":"error"/.test(line) ? options.log(`[${name}] ${line}`) : undefined),
    });
    this.redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
    this.subscriber = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
    this.queue = new Queue(expertQueueName(options.expertId), { connection: this.redis, prefix: this.prefix });
    this.subscriber.on('message', (_channel: string, text: string) => {
      const message = parseRouterInboxMessage(text);
      if (message.kind === 'partial' && message.output.status !== 'ok') options.log(`[${this.service}] ${message.output.status}: ${message.output.error ?? ''}`);
      this.waiters.get(message.requestId)?.();
    });
  }

  private get inbox(): string {
    return `${this.prefix}:inbox`;
  }

  async start(images: Buffer[]): Promise<void> {
    await this.subscriber.subscribe(this.inbox);
    const blobs = new RedisBlobStore(this.redis, { keyPrefix: this.prefix, ttlSeconds: 3600, maxBytes: 32 * 1024 * 1024 });
    this.refs = await Promise.all(images.map((image) => blobs.put(image, 'image/png').then(({ sha256, byteLength, mediaType }) => ({ sha256, byteLength, mediaType }))));
    await this.process.start();
  }

  /** `requests` jobs with `concurrency` in flight: requests per second and the expert's CPU per request. */
  async drive(run: { concurrency: number; requests: number }): Promise<LoneExpertRun> {
    const once = async (): Promise<void> => {
      const index = this.sent++;
      const requestId = `bx${index}x${randomBytes(3).toString('hex')}`;
      const now = Date.now();
      const data: ExpertJobData = {
        requestId,
        task: 'caption',
        expertId: this.options.expertId,
        prompt: this.options.prompt,
        images: [this.refs[index % this.refs.length]],
        generation: this.generation,
        deadlineUnixMs: now + 600_000,
        fuseAtUnixMs: now + 600_000,
        enqueuedAtUnixMs: now,
        replyTo: this.inbox,
      };
      const answered = new Promise<void>((resolve) => this.waiters.set(requestId, resolve));
      await this.queue.add(JOB_NAMES.expertGenerate, data, { jobId: expertJobId(requestId, this.options.expertId), removeOnComplete: true, removeOnFail: true });
      await answered;
      this.waiters.delete(requestId);
    };
    const pids = Object.values(this.process.pids);
    const batchesBefore = await this.batches();
    const cpuBefore = cpuSecondsOf(pids);
    const { perSecond } = await drive(run.concurrency, run.requests, once);
    const cpuAfter = cpuSecondsOf(pids);
    const batchesAfter = await this.batches();
    return {
      perSecond,
      expertCpuMsPerRequest: cpuBefore !== undefined && cpuAfter !== undefined ? ((cpuAfter - cpuBefore) * 1000) / run.requests : undefined,
      meanBatchSize: meanBatchSize(batchesBefore, batchesAfter, this.service),
    };
  }

  /**
   * Jobs and generation calls so far, from the expert's `rsmoe_expert_batch_size` histogram (its /metrics;
   * no series before the first batch).
   */
  private async batches(): Promise<{ jobs: number; calls: number }> {
    const total = await scrapeTotals(this.process.metricsUrls[this.service]);
    return { jobs: total('rsmoe_expert_batch_size_sum'), calls: total('rsmoe_expert_batch_size_count') };
  }

  async stop(): Promise<void> {
    await this.process.stop();
    await this.queue.close();
    await deleteKeys(this.redis, this.prefix);
    this.redis.disconnect();
    this.subscriber.disconnect();
  }
}

/** The median of each field over several runs. */
function medianRun(runs: LoneExpertRun[]): LoneExpertRun {
  const cpus = runs.map((run) => run.expertCpuMsPerRequest).filter((cpu): cpu is number => cpu !== undefined);
  return {
    perSecond: median(runs.map((run) => run.perSecond)),
    expertCpuMsPerRequest: cpus.length === runs.length ? median(cpus) : undefined,
    meanBatchSize: median(runs.map((run) => run.meanBatchSize)),
  };
}

function meanBatchSize(before: { jobs: number; calls: number }, after: { jobs: number; calls: number }, service: string): number {
  const calls = after.calls - before.calls;
  if (!(calls > 0)) throw new Error(`${service} reported no generation call in rsmoe_expert_batch_size over a run that it answered`);
  return (after.jobs - before.jobs) / calls;
}

/**
 * What batching gains the model itself, with nothing of the mesh around it: the expert's runtime in this
 * process, the same prompt, images and generation settings as the lone expert's jobs, `requests` generated
 * in calls of `batchSize` and one call each, the two sides in turns for `rounds` (median round each). The
 * expert's batched ÷ unbatched ratio cannot exceed it by much: it is that ratio's ceiling on this machine.
 */
async function measureRuntimeBatchGain(options: {
  runtime: VlmRuntime;
  prompt: string;
  generation: GenerationRequest['options'];
  images: Buffer[];
  batchSize: number;
  requests: number;
  rounds: number;
}): Promise<RuntimeBatchGain> {
  const { runtime, batchSize } = options;
  const features = await Promise.all(options.images.map(async (image) => (await runtime.encodeImages([image], { imagesInPrompt: 1 }))[0]));
  const request = (index: number): GenerationRequest => ({ prompt: options.prompt, imageFeatures: [features[index % features.length]], options: options.generation });
  const calls = Math.max(1, Math.round(options.requests / batchSize));
  const batched = async (): Promise<number> => {
    const started = performance.now();
    for (let call = 0; call < calls; call++) await runtime.generate(Array.from({ length: batchSize }, (_, row) => request(call * batchSize + row)));
    return (calls * batchSize * 1000) / (performance.now() - started);
  };
  const oneByOne = async (): Promise<number> => {
    const started = performance.now();
    for (let index = 0; index < calls * batchSize; index++) await runtime.generate([request(index)]);
    return (calls * batchSize * 1000) / (performance.now() - started);
  };
  // Warm-up: V8 and onnxruntime at both shapes.
  await batched();
  await oneByOne();
  const rounds: [number[], number[]] = [[], []];
  for (let round = 0; round < options.rounds; round++) {
    rounds[0].push(await batched());
    rounds[1].push(await oneByOne());
  }
  return { batchSize, batchedPerSecond: median(rounds[0]), oneByOnePerSecond: median(rounds[1]) };
}

/**
 * Whole-mesh latency (HTTP → gateway → gRPC → BullMQ → experts → router or aggregator → back) next to the
 * same generations called in-process and to the raw BullMQ round trips with no-op workers, in one run; then
 * micro-batching (one expert, default batching vs MAX_BATCH_SIZE=1) and the issue-15 goals, one line each.
 */
export async function runMeshBenchmark(options: MeshBenchmarkOptions): Promise<MeshBenchmarkReport> {
  const privateRedis = options.redisUrl === undefined ? await PrivateRedis.start() : undefined;
  const redisUrl = privateRedis?.url ?? options.redisUrl!;
  // Reads Redis's INFO around each level (and is closed whatever happens, so a failed run exits).
  const meter = new Redis(redisUrl, { maxRetriesPerRequest: null });
  try {
    return await runOn(redisUrl, meter, privateRedis?.pid, options);
  } finally {
    meter.disconnect();
    await privateRedis?.stop();
  }
}

/**
 * `redisPid`: the private Redis's process, whose wake-ups count with the mesh's (a Redis named by --redis may
 * run elsewhere: not counted).
 */
async function runOn(redisUrl: string, meter: Redis, redisPid: number | undefined, options: MeshBenchmarkOptions): Promise<MeshBenchmarkReport> {
  const { log } = options;
  log(`redis: ${options.redisUrl === undefined ? `a private redis-server (${redisUrl})` : redisUrl}`);
  const contention = await measureCoreContention(availableParallelism());
  log(
    `machine: a memory-bound loop runs ${contention.slowdown.toFixed(2)}× slower on each of ${contention.cores} cores at once than alone ` +
      `(${contention.togetherMs.toFixed(0)} vs ${contention.aloneMs.toFixed(0)} ms): the mesh, every core busy, pays it on its CPU per request; in-process, one core, does not`,
  );
  log(nodeFlagsLine(serviceNodeFlags(process.env), process.execArgv));
  const wakeup = await measureWakeupCost();
  if (wakeup) {
    log(
      `machine: a process woken from idle to answer a request spends ${wakeup.idleMs.toFixed(2)} ms of CPU, ${wakeup.busyMs.toFixed(3)} ms when busy ` +
        `(a bare Node HTTP server, requests ${wakeup.gapMs} ms apart vs back to back): at low load every wake-up of a request's path pays it`,
    );
  }
  const images = await Promise.all(options.imagePaths.map((path) => readFile(path)));
  const manifest = loadPackManifest(options.packDir);
  const rows: LatencyRow[] = [];
  const record = (path: string, concurrency: number, round: number, result: { latencies: number[]; perSecond: number }, extra: Partial<LatencyRow> = {}): void => {
    const row: LatencyRow = {
      path,
      concurrency,
      round,
      p50Ms: percentile(result.latencies, 50),
      p99Ms: percentile(result.latencies, 99),
      requestsPerSecond: result.perSecond,
      ...extra,
    };
    rows.push(row);
    const cpu = row.cpuMsPerRequest !== undefined ? `  cpu ${row.cpuMsPerRequest.toFixed(1).padStart(5)} ms/req` : '';
    const redis = row.redisCommandsPerRequest !== undefined ? `  redis ${row.redisCpuMsPerRequest!.toFixed(1).padStart(4)} ms/req ${row.redisCommandsPerRequest.toFixed(1).padStart(6)} cmd/req` : '';
    const wakeups = row.wakeupsPerRequest !== undefined ? `  wakeups ${row.wakeupsPerRequest.toFixed(0).padStart(3)}/req` : '';
    const turn = options.rounds > 1 && !path.startsWith('raw') ? `  (round ${round})` : '';
    log(`${path.padEnd(18)} c=${String(concurrency).padStart(2)}  p50 ${row.p50Ms.toFixed(2).padStart(7)} ms  p99 ${row.p99Ms.toFixed(2).padStart(7)} ms  ${row.requestsPerSecond.toFixed(1).padStart(7)} req/s${cpu}${redis}${wakeups}${turn}`);
    if (row.generationMsPerRequestByExpert) log(`${''.padEnd(18)} generation ms/req by expert: ${Object.entries(row.generationMsPerRequestByExpert).map(([name, ms]) => `${name} ${ms.toFixed(1)}`).join(', ')}`);
    if (row.cpuMsPerRequestByService) log(`${''.padEnd(18)} cpu ms/req by service: ${Object.entries(row.cpuMsPerRequestByService).map(([name, ms]) => `${name} ${ms.toFixed(1)}`).join(', ')}`);
    if (row.redisCommands) log(`${''.padEnd(18)} redis commands/req: ${Object.entries(row.redisCommands).slice(0, 10).map(([name, calls]) => `${name} ${calls.toFixed(1)}`).join(', ')}`);
  };
  /**
   * Runs one level and records it with the CPU the given processes spent per request and, for paths on
   * Redis, Redis's CPU and commands per request.
   */
  const measure = async (
    path: string,
    concurrency: number,
    round: number,
    once: (index: number) => Promise<void>,
    cpuSeconds: () => number | undefined,
    usesRedis: boolean,
    wakeupPids: number[],
    services?: Record<string, number>,
    generationMs?: () => Promise<Record<string, number>>,
  ): Promise<void> => {
    const generationBefore = await generationMs?.();
    const pids = redisPid === undefined || !usesRedis ? wakeupPids : [...wakeupPids, redisPid];
    const wakeupsBefore = wakeupsOf(pids);
    const redisBefore = usesRedis ? await snapshotRedis(meter) : undefined;
    const servicesCpu = (): [string, number | undefined][] => Object.entries(services ?? {}).map(([name, pid]) => [name, cpuSecondsOf([pid])]);
    const servicesBefore = servicesCpu();
    const before = cpuSeconds();
    const result = await drive(concurrency, options.requests, once);
    // Work that trails the answers (a flow parent finishing after its children replied) belongs to this level.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const after = cpuSeconds();
    const servicesAfter = servicesCpu();
    const redisAfter = usesRedis ? await snapshotRedis(meter) : undefined;
    const wakeupsAfter = wakeupsOf(pids);
    const generationAfter = await generationMs?.();
    const perRequest = (seconds: number): number => (seconds * 1000) / options.requests;
    const extra: Partial<LatencyRow> = before !== undefined && after !== undefined ? { cpuMsPerRequest: perRequest(after - before) } : {};
    if (wakeupsBefore !== undefined && wakeupsAfter !== undefined) extra.wakeupsPerRequest = counterDelta(wakeupsBefore, wakeupsAfter) / options.requests;
    if (services && servicesBefore.every(([, seconds]) => seconds !== undefined) && servicesAfter.every(([, seconds]) => seconds !== undefined)) {
      extra.cpuMsPerRequestByService = Object.fromEntries(servicesAfter.map(([name, seconds], index) => [name, perRequest(seconds! - servicesBefore[index][1]!)]));
    }
    if (generationBefore && generationAfter) {
      extra.generationMsPerRequestByExpert = Object.fromEntries(Object.entries(generationAfter).map(([name, ms]) => [name, (ms - generationBefore[name]) / options.requests]));
    }
    if (redisBefore && redisAfter) {
      const usage = usageBetween(redisBefore, redisAfter);
      extra.redisCpuMsPerRequest = perRequest(usage.cpuSeconds);
      extra.redisCommandsPerRequest = usage.totalCalls / options.requests;
      extra.redisCommands = Object.fromEntries([...usage.commands].map(([name, calls]) => [name, calls / options.requests]));
    }
    record(path, concurrency, round, result, extra);
  };
  const ownCpuSeconds = (): number => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  };
  const decision = new InstructionRouter(manifest).route({ task: 'caption' });
  const meshWarmup = options.meshWarmup ?? options.warmup;
  // (1) The mesh, as separate processes.
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const mesh = new MeshLauncher({
    packDir: options.packDir,
    redisUrl,
    keyPrefix: prefix,
    queuePrefix: prefix,
    gatewayPort: await freePort(),
    routerPort: await freePort(),
    env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1' },
    onLog: (service, line) => (/"level":"error"/.test(line) ? log(`[${service}] ${line}`) : undefined),
  });
  // A lean client (pre-encoded multipart bodies, keep-alive) so that client cost stays out of the numbers.
  let agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const boundary = 'rsmoe-bench-boundary';
  const bodies = images.map((image) =>
    Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="image.png"\r\nContent-Type: image/png\r\n\r\n`),
      image,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]),
  );
  const gateway = new URL(mesh.gatewayUrl);
  // Per answer: the client's latency and the router's own part of it (`timings.totalMs`: received → fused
  // and stored), so that the overhead splits into the router's side and the edge's (HTTP, gateway, gRPC).
  let splits: { latencyMs: number; routerMs: number }[] = [];
  const caption = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const body = bodies[index % bodies.length];
      const sentAt = performance.now();
      const call = request(
        {
          host: gateway.hostname,
          port: gateway.port,
          path: '/v1/captions',
          method: 'POST',
          agent,
          headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            const parsed = JSON.parse(text) as { degraded?: boolean; timings?: { totalMs?: number } };
            if (response.statusCode !== 200 || parsed.degraded) reject(new Error(`mesh request failed: ${response.statusCode} ${text.slice(0, 200)}`));
            else {
              splits.push({ latencyMs: performance.now() - sentAt, routerMs: parsed.timings?.totalMs ?? Number.NaN });
              resolve();
            }
          });
        },
      );
      call.on('error', reject);
      call.end(body);
    });
  // (2) The same generations in-process: one runtime per routed expert, as the experts load them. A
  // single process runs them one after another (onnxruntime-node runs a session on the calling thread).
  const runtimeOptions = { executionProvider: 'cpu' as const, intraOpThreads: 1, logger: { info: () => undefined, warn: () => undefined } };
  const experts = await Promise.all(
    decision.experts.map(async (assignment) => {
      const expert = manifest.experts.find((candidate) => candidate.id === assignment.expertId)!;
      return { assignment, expert, runtime: await VlmRuntime.load(expert.modelDir, runtimeOptions) };
    }),
  );
  // Features once per image, encoder and packing (one image per prompt here), as the mesh's shared cache does.
  const featureCache = new Map<string, ImageFeatures>();
  const featuresFor = async (runtime: VlmRuntime, image: Buffer): Promise<ImageFeatures[]> => {
    const key = `${runtime.encoderId}:${runtime.featurePacking(1)}:${createHash('sha256').update(image).digest('hex')}`;
    let features = featureCache.get(key);
    if (!features) [features] = await runtime.encodeImages([image], { imagesInPrompt: 1 });
    featureCache.set(key, features);
    return [features];
  };
  // Routed as the mesh's router routes: with the pack's router model, each image's scene guess fills
  // `{scene}` in the prompts (so both sides generate the same texts, and both pay for the classifier).
  const classifier = manifest.router.modelDir ? await RouterClassifier.load(manifest.router.modelDir) : undefined;
  const router = new InstructionRouter(manifest, {
    ...(classifier ? { model: { predict: async (input) => (input.image ? { sceneClass: (await classifier.classifyScene(input.image)).hint } : {}) } } : {}),
  });
  const route = (image: Buffer) => (router.hasModel ? router.routeWithModel({ task: 'caption' }, image) : Promise.resolve(router.route({ task: 'caption' })));
  // Each expert's compute so far (ms, vision encode + prefill + decode), as the mesh's experts report theirs.
  const inProcessGenerationMs: Record<string, number> = Object.fromEntries(experts.map(({ assignment }) => [`expert.${assignment.expertId}`, 0]));
  const inProcess = async (index: number): Promise<void> => {
    const image = images[index % images.length];
    const routed = await route(image);
    for (const { assignment, expert, runtime } of experts) {
      const prompt = routed.experts.find((candidate) => candidate.expertId === assignment.expertId)?.prompt ?? assignment.prompt;
      const [{ timings }] = await runtime.generate([{ prompt, imageFeatures: await featuresFor(runtime, image), options: expert.generation }]);
      inProcessGenerationMs[`expert.${assignment.expertId}`] += timings.visionEncodeMs + timings.prefillMs + timings.decodeMs;
    }
  };
  /** The routed experts' compute so far in the mesh (ms), from each expert's `rsmoe_expert_compute_seconds`. */
  const meshGenerationMs = async (): Promise<Record<string, number>> =>
    Object.fromEntries(
      await Promise.all(
        Object.keys(inProcessGenerationMs).map(async (service) => [service, 1000 * (await scrapeTotals(mesh.metricsUrls[service]))('rsmoe_expert_compute_seconds_sum')]),
      ),
    );
  // Only when every expert is the same model can one call batch all prompts (the fixture pack): a lower
  // bound no real pack reaches, shown for reference.
  const shared = experts.every(({ expert }) => expert.modelDir === experts[0].expert.modelDir);
  const [{ runtime: sharedRuntime }] = experts;
  const inProcessBatched = async (index: number): Promise<void> => {
    const image = images[index % images.length];
    const routed = await route(image);
    const imageFeatures = await featuresFor(sharedRuntime, image);
    await sharedRuntime.generate(
      experts.map(({ assignment, expert }) => ({
        prompt: routed.experts.find((candidate) => candidate.expertId === assignment.expertId)?.prompt ?? assignment.prompt,
        imageFeatures,
        options: expert.generation,
      })),
    );
  };
  try {
    await mesh.start();
    const meshPids = Object.values(mesh.pids);
    await warmUpMesh(meshWarmup, options.warmup, caption, () => cpuSecondsOf(meshPids), log);
    await drive(1, options.warmup, inProcess);
    if (shared) await drive(1, options.warmup, inProcessBatched);
    const idle = idleCpuMsPerSecond(mesh.pids);
    await new Promise((resolve) => setTimeout(resolve, IDLE_SAMPLE_MS));
    log(`mesh idle         cpu ms per second by service: ${Object.entries(idle()).map(([name, ms]) => `${name} ${ms.toFixed(1)}`).join(', ')}`);
    // The mesh and in-process take turns, level by level and round by round: a slow moment of this machine
    // falls on both sides of a ratio, and the goals read the median round.
    for (let round = 1; round <= options.rounds; round++) {
      for (const concurrency of options.concurrency) {
        splits = [];
        // Fresh connections per level: sockets left idle through the in-process turn may be past the
        // gateway's keep-alive timeout, and a request sent as the server closes one is reset.
        agent.destroy();
        agent = new Agent({ keepAlive: true, maxSockets: 64 });
        // Generation times at the lowest level only, where every batch is one job (a batch's prefill is
        // reported with each of its jobs).
        const lowest = concurrency === Math.min(...options.concurrency);
        await measure('mesh', concurrency, round, caption, () => cpuSecondsOf(meshPids), true, meshPids, mesh.pids, lowest ? meshGenerationMs : undefined);
        const router = median(splits.map((split) => split.routerMs));
        const edge = median(splits.map((split) => split.latencyMs - split.routerMs));
        log(`${''.padEnd(18)} latency split p50: router ${router.toFixed(0)} ms (received → fused and stored, 1 ms steps), edge ${edge.toFixed(1)} ms (HTTP + gateway + gRPC both ways)`);
        await measure('in-process', concurrency, round, inProcess, ownCpuSeconds, false, [process.pid], undefined, lowest ? async () => ({ ...inProcessGenerationMs }) : undefined);
        if (shared) await measure('in-process-batched', concurrency, round, inProcessBatched, ownCpuSeconds, false, [process.pid]);
      }
    }
    // Requests open past DEADLINE_JOB_GRACE_MS armed a deadline job, due at their fuse point: its pickup
    // comes after the run and is not in the counts above (its add is).
    const aggregate = new Queue(AGGREGATE_QUEUE, { connection: meter, prefix });
    const delayed = await aggregate.getDelayedCount();
    await aggregate.close();
    const sent = meshWarmup + options.requests * options.concurrency.length * options.rounds;
    log(`mesh: ${delayed} deadline jobs still delayed for ${sent} requests (${((100 * delayed) / sent).toFixed(0)} %); their pickups are not counted above`);
  } finally {
    agent.destroy();
    await mesh.stop();
    await deleteKeys(meter, prefix);
    await Promise.all(experts.map(({ runtime }) => runtime.release()));
    await classifier?.release();
  }

  // (3) The floor of the queueing hop: raw BullMQ with no-op workers and the mesh's fan-out, one plain job
  // per routed expert, each replying to an inbox (the mesh's job shape); then, for reference, a flow (a
  // parent on `aggregate` plus those children; the parent replies), the shape the mesh used before. Their CPU
  // is this process's (workers and client together).
  const raw = await rawQueuePaths(redisUrl, decision.experts.map((assignment) => assignment.expertId));
  try {
    await drive(4, options.warmup, (index) => raw.jobs(index + 4_000_000));
    for (const concurrency of options.concurrency) await measure('raw-jobs', concurrency, 1, (index) => raw.jobs(index + 5_000_000), ownCpuSeconds, true, [process.pid]);
    await drive(4, options.warmup, (index) => raw.flow(index + 2_000_000));
    for (const concurrency of options.concurrency) await measure('raw-flow', concurrency, 1, (index) => raw.flow(index + 3_000_000), ownCpuSeconds, true, [process.pid]);
  } finally {
    await raw.close();
  }
  // (3b) The floor of the design's shape: the same hops as a caption through the mesh (HTTP, Redis, gRPC, one
  // job per expert in its own process, replies, gRPC, HTTP) with no-op processes at every stop. What the
  // mesh spends above it is its own code; what this spends above raw-jobs is the shape on this machine.
  const floor = new HopFloor({ redisUrl, expertIds: decision.experts.map((assignment) => assignment.expertId) });
  try {
    await floor.start();
    const floorPids = Object.values(floor.pids);
    const send = (index: number): Promise<void> => floor.send(bodies[index % bodies.length]);
    await drive(8, meshWarmup, send);
    for (const concurrency of options.concurrency) {
      floor.resetConnections();
      await measure('raw-mesh', concurrency, 1, send, () => cpuSecondsOf(floorPids), true, floorPids, floor.pids);
    }
  } finally {
    await floor.stop();
    await deleteKeys(meter, floor.keyPrefix);
  }

  const rowOf = (path: string, concurrency: number, round: number): LatencyRow | undefined =>
    rows.find((row) => row.path === path && row.concurrency === concurrency && row.round === (path.startsWith('raw') ? 1 : round));
  for (let round = 1; round <= options.rounds; round++) {
    for (const concurrency of options.concurrency) {
      const find = (path: string) => rowOf(path, concurrency, round);
      const [meshRow, local, batched, hop, shape] = [find('mesh')!, find('in-process')!, find('in-process-batched'), find('raw-jobs')!, find('raw-mesh')!];
      const versus = (base: LatencyRow) =>
        `p50 ${(meshRow.p50Ms - base.p50Ms).toFixed(2)} ms, p99 ${(meshRow.p99Ms - base.p99Ms).toFixed(2)} ms (ratio p50 ${(meshRow.p50Ms / base.p50Ms).toFixed(2)})`;
      const turn = options.rounds > 1 ? ` (round ${round})` : '';
      log(`overhead c=${concurrency}${turn}: mesh - in-process = ${versus(local)}${batched ? `; mesh - in-process-batched = ${versus(batched)}` : ''}; floor raw-jobs p50 ${hop.p50Ms.toFixed(2)} ms, p99 ${hop.p99Ms.toFixed(2)} ms; the design's hops alone raw-mesh p50 ${shape.p50Ms.toFixed(2)} ms, p99 ${shape.p99Ms.toFixed(2)} ms`);
    }
  }

  // (4) Micro-batching: one expert alone, default batching vs MAX_BATCH_SIZE=1, same concurrency.
  let batching: MeshBenchmarkReport['batching'];
  if (options.batching) {
    const assignment = decision.experts.find((candidate) => candidate.expertId === (options.batching!.expertId ?? candidate.expertId));
    if (!assignment) throw new Error(`expert ${options.batching.expertId} is not routed for captions; routed: ${decision.experts.map((e) => e.expertId).join(', ')}`);
    const alone = { packDir: options.packDir, redisUrl, expertId: assignment.expertId, prompt: assignment.prompt, log };
    const figures = (label: string, run: LoneExpertRun): string =>
      `${label} ${run.perSecond.toFixed(1)} req/s${run.expertCpuMsPerRequest !== undefined ? `, expert cpu ${run.expertCpuMsPerRequest.toFixed(2)} ms/req` : ''}`;
    const prefix = `expert.${assignment.expertId} alone   c=${String(options.batching.concurrency).padStart(2)}  `;
    // Both processes run side by side and are driven in turns (batched, unbatched, batched, ...), so that a
    // busy moment of the machine does not fall on one side only; each side reports its median round.
    const sides = [new LoneExpert({ ...alone, env: {} }), new LoneExpert({ ...alone, env: { MAX_BATCH_SIZE: '1' } })];
    const rounds: [LoneExpertRun[], LoneExpertRun[]] = [[], []];
    try {
      for (const side of sides) {
        await side.start(images);
        await side.drive({ concurrency: options.batching.concurrency, requests: options.batching.warmup });
      }
      for (let round = 0; round < options.batching.rounds; round++) {
        for (const [index, side] of sides.entries()) rounds[index].push(await side.drive(options.batching));
        log(`${prefix}${figures('default batching', rounds[0][round])}; ${figures('MAX_BATCH_SIZE=1', rounds[1][round])} (round ${round + 1})`);
      }
    } finally {
      await Promise.all(sides.map((side) => side.stop()));
    }
    const [batched, unbatched] = rounds.map(medianRun);
    log(prefix + figures('default batching (median)', batched));
    log(prefix + figures('MAX_BATCH_SIZE=1 (median)', unbatched));
    const [batchedPerSecond, unbatchedPerSecond] = [batched.perSecond, unbatched.perSecond];
    // The ceiling of that ratio: the same model batched in this process, at the batch size the expert formed.
    const expert = manifest.experts.find((candidate) => candidate.id === assignment.expertId)!;
    const runtime = await VlmRuntime.load(expert.modelDir, runtimeOptions);
    let runtimeGain: RuntimeBatchGain;
    try {
      runtimeGain = await measureRuntimeBatchGain({
        runtime,
        prompt: assignment.prompt,
        generation: expert.generation,
        images,
        batchSize: Math.max(1, Math.round(batched.meanBatchSize)),
        requests: options.batching.requests,
        rounds: options.batching.rounds,
      });
    } finally {
      await runtime.release();
    }
    const gain = runtimeGain.batchedPerSecond / runtimeGain.oneByOnePerSecond;
    log(
      `expert.${assignment.expertId} in-process      the runtime alone (the ratio's ceiling): batches of ${runtimeGain.batchSize} (the expert's mean batch ${batched.meanBatchSize.toFixed(1)}) ` +
        `${runtimeGain.batchedPerSecond.toFixed(1)} req/s; one by one ${runtimeGain.oneByOnePerSecond.toFixed(1)} req/s: ${gain.toFixed(2)}×; ` +
        `the expert's batching reaches ${((100 * batchedPerSecond) / unbatchedPerSecond / gain).toFixed(0)} % of it`,
    );
    batching = { expertId: assignment.expertId, concurrency: options.batching.concurrency, batchedPerSecond, unbatchedPerSecond, runtimeGain };
  }
  const levels = [Math.min(...options.concurrency), Math.max(...options.concurrency)];
  const goalsOfRound = (round: number): GoalCheck[] => {
    const [low, high] = levels.map((concurrency) => {
      const find = (path: string) => rowOf(path, concurrency, round)!;
      return { concurrency, mesh: find('mesh'), inProcess: find('in-process'), rawHop: find('raw-jobs'), designFloor: find('raw-mesh') };
    });
    return meshGoals({ low, high, throughputGoal: options.throughputGoal });
  };
  // Micro-batching has rounds of its own (above): its goal reads their medians.
  const goals = [...medianGoals(Array.from({ length: options.rounds }, (_, index) => goalsOfRound(index + 1))), ...(batching ? [batchingGoal(batching)] : [])];
  for (const goal of goals) log(formatGoalLine(goal));
  return { rows, ...(batching ? { batching } : {}), goals: goals.map((goal) => ({ ...goal, met: goalMet(goal) })) };
}
