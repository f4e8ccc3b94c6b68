import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
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
  log: (line: string) => void;
}

export interface LatencyRow {
  path: string;
  concurrency: number;
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
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

/** A raw BullMQ flow (parent + one child per expert) with no-op workers, completion pushed over pub/sub. */
async function rawFlowPath(redisUrl: string, expertIds: string[]) {
  const prefix = `benchraw${randomBytes(4).toString('hex')}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const publisher = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const subscriber = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const waiters = new Map<string, () => void>();
  subscriber.on('message', (channel: string) => waiters.get(channel)?.());
  const workers = [
    ...expertIds.map((id) => new Worker(expertQueueName(id), async () => ({ ok: true }), { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix, concurrency: 64 })),
    new Worker(
      AGGREGATE_QUEUE,
      async (job) => {
        await job.getChildrenValues();
        await publisher.publish(`${prefix}:done:${job.data.id}`, '1');
      },
      { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix, concurrency: 64 },
    ),
  ];
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  const flows = new FlowProducer({ connection, prefix });
  return {
    async once(index: number): Promise<void> {
      const id = `raw${index}x${randomBytes(3).toString('hex')}`;
      const channel = `${prefix}:done:${id}`;
      const done = new Promise<void>((resolve) => waiters.set(channel, resolve));
      await subscriber.subscribe(channel);
      await flows.add({
        name: 'fuse',
        queueName: AGGREGATE_QUEUE,
        data: { id },
        opts: { jobId: `${id}.aggregate`, removeOnComplete: true },
        children: expertIds.map((expertId) => ({
          name: 'generate',
          queueName: expertQueueName(expertId),
          data: { id },
          opts: { jobId: `${id}.${expertId}`, ignoreDependencyOnFailure: true, removeOnComplete: true },
        })),
      });
      await done;
      waiters.delete(channel);
      await subscriber.unsubscribe(channel);
    },
    async close(): Promise<void> {
      await Promise.all(workers.map((worker) => worker.close()));
      await flows.close();
      await deleteKeys(connection, prefix);
      for (const redis of [connection, publisher, subscriber]) redis.disconnect();
    },
  };
}

/**
 * Whole-mesh latency (HTTP → gateway → gRPC → BullMQ → experts → aggregator → back) next to the same
 * generation called in-process and to a raw BullMQ flow round trip with no-op workers, in one run.
 */
export async function runMeshBenchmark(options: MeshBenchmarkOptions): Promise<LatencyRow[]> {
  const { log } = options;
  const images = await Promise.all(options.imagePaths.map((path) => readFile(path)));
  const manifest = loadPackManifest(options.packDir);
  const rows: LatencyRow[] = [];
  const record = (path: string, concurrency: number, result: { latencies: number[]; perSecond: number }): void => {
    const row = { path, concurrency, p50Ms: percentile(result.latencies, 50), p99Ms: percentile(result.latencies, 99), requestsPerSecond: result.perSecond };
    rows.push(row);
    log(`${path.padEnd(11)} c=${String(concurrency).padStart(2)}  p50 ${row.p50Ms.toFixed(2).padStart(7)} ms  p99 ${row.p99Ms.toFixed(2).padStart(7)} ms  ${row.requestsPerSecond.toFixed(1).padStart(7)} req/s`);
  };

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
    await drive(4, 40, caption);
    for (const concurrency of options.concurrency) record('mesh', concurrency, await drive(concurrency, options.requests, caption));
  } finally {
    agent.destroy();
    await mesh.stop();
    const cleanup = new Redis(options.redisUrl);
    await deleteKeys(cleanup, prefix);
    cleanup.disconnect();
  }

  // (2) The same work in-process: image features once per image, the experts' prompts in one batch.
  const runtime = await VlmRuntime.load(manifest.experts[0].modelDir, {
    executionProvider: 'cpu',
    intraOpThreads: 1,
    logger: { info: () => undefined, warn: () => undefined },
  });
  const decision = new InstructionRouter(manifest).route({ task: 'caption' });
  const featureCache = new Map<string, ImageFeatures>();
  const inProcess = async (index: number): Promise<void> => {
    const image = images[index % images.length];
    const key = createHash('sha256').update(image).digest('hex');
    let features = featureCache.get(key);
    if (!features) [features] = await runtime.encodeImages([image]);
    featureCache.set(key, features);
    await runtime.generate(
      decision.experts.map((assignment) => ({
        prompt: assignment.prompt,
        imageFeatures: features,
        options: manifest.experts.find((expert) => expert.id === assignment.expertId)?.generation,
      })),
    );
  };
  await drive(1, 40, inProcess);
  for (const concurrency of options.concurrency) record('in-process', concurrency, await drive(concurrency, options.requests, inProcess));
  await runtime.release();

  // (3) The floor of the queueing hop: a raw BullMQ flow with no-op workers.
  const raw = await rawFlowPath(options.redisUrl, decision.experts.map((assignment) => assignment.expertId));
  try {
    await drive(4, 40, (index) => raw.once(index));
    for (const concurrency of options.concurrency) record('raw-flow', concurrency, await drive(concurrency, options.requests, (index) => raw.once(index + 1_000_000)));
  } finally {
    await raw.close();
  }

  for (const concurrency of options.concurrency) {
    const find = (path: string) => rows.find((row) => row.path === path && row.concurrency === concurrency)!;
    const [meshRow, local, flow] = [find('mesh'), find('in-process'), find('raw-flow')];
    log(
      `overhead c=${concurrency}: mesh - in-process = p50 ${(meshRow.p50Ms - local.p50Ms).toFixed(2)} ms, p99 ${(meshRow.p99Ms - local.p99Ms).toFixed(2)} ms; raw BullMQ flow p50 ${flow.p50Ms.toFixed(2)} ms, p99 ${flow.p99Ms.toFixed(2)} ms; ratio mesh/in-process p50 ${(meshRow.p50Ms / local.p50Ms).toFixed(2)}`,
    );
  }
  return rows;
}
