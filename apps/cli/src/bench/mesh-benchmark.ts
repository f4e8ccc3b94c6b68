import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { FlowProducer, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { AGGREGATE_QUEUE, expertQueueName, loadPackManifest } from '@rsmoe/contracts';
import { InstructionRouter } from '@rsmoe/routing';
import { VlmRuntime, type ImageFeatures } from '@rsmoe/runtime';
import { MeshLauncher } from '../mesh/mesh-launcher';
import { freePort } from '../mesh/redis-locator';

export interface MeshBenchmarkOptions {
  packDir: string;
  redisUrl: string;
  imagePaths: string[];
  concurrency: number[];
  /** Requests per concurrency level (after warm-up). */
  requests: number;
  /**
   * Requests before measuring, per path. A service runs warm: until V8 has optimised the hot code, a
   * request costs several times the CPU (six processes warm up more slowly than one).
   */
  warmup: number;
  log: (line: string) => void;
}

export interface LatencyRow {
  path: string;
  concurrency: number;
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  /** CPU time per request of the processes doing the work (the mesh's services; this process in-process). */
  cpuMsPerRequest?: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

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
  const send = async (index: number, replies: 'children' | 'parent'): Promise<void> => {
    const id = `raw${index}x${randomBytes(3).toString('hex')}`;
    const done = new Promise<void>((resolve) => waiters.set(id, { missing: replies === 'children' ? expertIds.length : 1, done: resolve }));
    await flows.add({
      name: 'fuse',
      queueName: AGGREGATE_QUEUE,
      data: { id, reply: replies === 'parent' },
      opts: { jobId: `${id}.aggregate`, removeOnComplete: true },
      children: expertIds.map((expertId) => ({
        name: 'generate',
        queueName: expertQueueName(expertId),
        data: { id, reply: replies === 'children' },
        opts: { jobId: `${id}.${expertId}`, ignoreDependencyOnFailure: true, removeOnComplete: true },
      })),
    });
    await done;
    waiters.delete(id);
  };
  return {
    /** The floor of the router's fast path: the flow is added, every child replies to the inbox. */
    hop: (index: number) => send(index, 'children'),
    /** The floor of the aggregator's path: the flow is added, the children finish, the parent replies. */
    flow: (index: number) => send(index, 'parent'),
    async close(): Promise<void> {
      await Promise.all(workers.map((worker) => worker.close()));
      await flows.close();
      await deleteKeys(publisher, prefix);
      for (const redis of connections) redis.disconnect();
    },
  };
}

/**
 * Whole-mesh latency (HTTP → gateway → gRPC → BullMQ → experts → router or aggregator → back) next to the
 * same generations called in-process and to the raw BullMQ round trips with no-op workers, in one run.
 */
export async function runMeshBenchmark(options: MeshBenchmarkOptions): Promise<LatencyRow[]> {
  const { log } = options;
  const images = await Promise.all(options.imagePaths.map((path) => readFile(path)));
  const manifest = loadPackManifest(options.packDir);
  const rows: LatencyRow[] = [];
  const record = (path: string, concurrency: number, result: { latencies: number[]; perSecond: number }, cpuMsPerRequest?: number): void => {
    const row: LatencyRow = {
      path,
      concurrency,
      p50Ms: percentile(result.latencies, 50),
      p99Ms: percentile(result.latencies, 99),
      requestsPerSecond: result.perSecond,
      ...(cpuMsPerRequest !== undefined ? { cpuMsPerRequest } : {}),
    };
    rows.push(row);
    const cpu = cpuMsPerRequest !== undefined ? `  cpu ${cpuMsPerRequest.toFixed(1).padStart(5)} ms/req` : '';
    log(`${path.padEnd(18)} c=${String(concurrency).padStart(2)}  p50 ${row.p50Ms.toFixed(2).padStart(7)} ms  p99 ${row.p99Ms.toFixed(2).padStart(7)} ms  ${row.requestsPerSecond.toFixed(1).padStart(7)} req/s${cpu}`);
  };
  /** Runs one level and records it with the CPU the given processes spent per request. */
  const measure = async (path: string, concurrency: number, once: (index: number) => Promise<void>, cpuSeconds: () => number | undefined): Promise<void> => {
    const before = cpuSeconds();
    const result = await drive(concurrency, options.requests, once);
    const after = cpuSeconds();
    record(path, concurrency, result, before !== undefined && after !== undefined ? ((after - before) * 1000) / options.requests : undefined);
  };
  const ownCpuSeconds = (): number => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  };
  const decision = new InstructionRouter(manifest).route({ task: 'caption' });
  // (1) The mesh, as separate processes.
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const mesh = new MeshLauncher({
    packDir: options.packDir,
    redisUrl: options.redisUrl,
    keyPrefix: prefix,
    queuePrefix: prefix,
    gatewayPort: await freePort(),
    routerPort: await freePort(),
    env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1' },
    onLog: (service, line) => (/"level":"error"/.test(line) ? log(`[${service}] ${line}`) : undefined),
  });
  await mesh.start();
  // A lean client (pre-encoded multipart bodies, keep-alive) so that client cost stays out of the numbers.
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const boundary = 'rsmoe-bench-boundary';
  const bodies = images.map((image) =>
    Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="image.png"\r\nContent-Type: image/png\r\n\r\n`),
      image,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]),
  );
  const gateway = new URL(mesh.gatewayUrl);
  const caption = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const body = bodies[index % bodies.length];
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
            const parsed = JSON.parse(text) as { degraded?: boolean };
            if (response.statusCode !== 200 || parsed.degraded) reject(new Error(`mesh request failed: ${response.statusCode} ${text.slice(0, 200)}`));
            else resolve();
          });
        },
      );
      call.on('error', reject);
      call.end(body);
    });
  try {
    await drive(4, options.warmup, caption);
    const meshPids = Object.values(mesh.pids);
    for (const concurrency of options.concurrency) await measure('mesh', concurrency, caption, () => cpuSecondsOf(meshPids));
  } finally {
    agent.destroy();
    await mesh.stop();
    const cleanup = new Redis(options.redisUrl);
    await deleteKeys(cleanup, prefix);
    cleanup.disconnect();
  }

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
  const inProcess = async (index: number): Promise<void> => {
    const image = images[index % images.length];
    for (const { assignment, expert, runtime } of experts) {
      await runtime.generate([{ prompt: assignment.prompt, imageFeatures: await featuresFor(runtime, image), options: expert.generation }]);
    }
  };
  await drive(1, options.warmup, inProcess);
  for (const concurrency of options.concurrency) await measure('in-process', concurrency, inProcess, ownCpuSeconds);
  // Only when every expert is the same model can one call batch all prompts (the fixture pack): a lower
  // bound no real pack reaches, shown for reference.
  const shared = experts.every(({ expert }) => expert.modelDir === experts[0].expert.modelDir);
  if (shared) {
    const [{ runtime }] = experts;
    const inProcessBatched = async (index: number): Promise<void> => {
      const imageFeatures = await featuresFor(runtime, images[index % images.length]);
      await runtime.generate(experts.map(({ assignment, expert }) => ({ prompt: assignment.prompt, imageFeatures, options: expert.generation })));
    };
    await drive(1, options.warmup, inProcessBatched);
    for (const concurrency of options.concurrency) await measure('in-process-batched', concurrency, inProcessBatched, ownCpuSeconds);
  }
  await Promise.all(experts.map(({ runtime }) => runtime.release()));

  // (3) The floors of the queueing hop: raw BullMQ flows with no-op workers.
  const raw = await rawQueuePaths(options.redisUrl, decision.experts.map((assignment) => assignment.expertId));
  try {
    await drive(4, options.warmup, raw.hop);
    for (const concurrency of options.concurrency) record('raw-hop', concurrency, await drive(concurrency, options.requests, (index) => raw.hop(index + 1_000_000)));
    await drive(4, options.warmup, (index) => raw.flow(index + 2_000_000));
    for (const concurrency of options.concurrency) record('raw-flow', concurrency, await drive(concurrency, options.requests, (index) => raw.flow(index + 3_000_000)));
  } finally {
    await raw.close();
  }

  for (const concurrency of options.concurrency) {
    const find = (path: string) => rows.find((row) => row.path === path && row.concurrency === concurrency);
    const [meshRow, local, batched, hop] = [find('mesh')!, find('in-process')!, find('in-process-batched'), find('raw-hop')!];
    const versus = (base: LatencyRow) =>
      `p50 ${(meshRow.p50Ms - base.p50Ms).toFixed(2)} ms, p99 ${(meshRow.p99Ms - base.p99Ms).toFixed(2)} ms (ratio p50 ${(meshRow.p50Ms / base.p50Ms).toFixed(2)})`;
    log(`overhead c=${concurrency}: mesh - in-process = ${versus(local)}${batched ? `; mesh - in-process-batched = ${versus(batched)}` : ''}; floor raw-hop p50 ${hop.p50Ms.toFixed(2)} ms, p99 ${hop.p99Ms.toFixed(2)} ms`);
  }
  return rows;
}
