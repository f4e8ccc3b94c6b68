import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { Worker } from 'node:worker_threads';
import { median } from './stats';

/**
 * A loop of dependent reads and writes across 32 MiB (past the caches of a core, like a model's weights and
 * activations): its speed depends on the shared cache and memory bandwidth, not only on the core.
 */
const MEMORY_BOUND_LOOP = `
const { parentPort, workerData } = require('node:worker_threads');
const cells = new Float64Array(1 << 22);
let sum = 0;
const started = performance.now();
for (let pass = 0; pass < workerData.passes; pass++) {
  for (let i = 0; i < cells.length; i++) {
    const j = (i * 7919) & (cells.length - 1);
    cells[i] = cells[j] + i;
    sum += cells[i];
  }
}
parentPort.postMessage({ ms: performance.now() - started, sum });
`;

function runLoop(passes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(MEMORY_BOUND_LOOP, { eval: true, workerData: { passes } });
    worker.once('message', (message: { ms: number }) => resolve(message.ms));
    worker.once('error', reject);
  });
}

export interface CoreContention {
  /** Median time of the loop alone, in ms. */
  aloneMs: number;
  /** Median time of each of `cores` loops run at once, in ms. */
  togetherMs: number;
  cores: number;
  /** togetherMs ÷ aloneMs: how much slower (and costlier in CPU time) memory-bound work runs when every core is busy. */
  slowdown: number;
}

/**
 * How much a memory-bound loop slows down when `cores` copies run at once rather than one alone, median of
 * `rounds` turns (alone, together, alone, …). The mesh keeps every core busy while the in-process baseline
 * keeps one: this is the part of the mesh's CPU per request that the machine, not the mesh, adds.
 */
export async function measureCoreContention(cores: number, rounds = 3, passes = 6): Promise<CoreContention> {
  const alone: number[] = [];
  const together: number[] = [];
  await runLoop(1);
  for (let round = 0; round < rounds; round++) {
    alone.push(await runLoop(passes));
    const times = await Promise.all(Array.from({ length: cores }, () => runLoop(passes)));
    together.push(Math.max(...times));
  }
  const aloneMs = median(alone);
  const togetherMs = median(together);
  return { aloneMs, togetherMs, cores, slowdown: togetherMs / aloneMs };
}

/** One counter of every thread of some processes, by `pid/tid`. */
export type ThreadCounters = Map<string, number>;

/**
 * Reads one counter of every thread; undefined when a process is gone. A thread that ends between the listing
 * of its process and the read of its file is skipped, not an error: services start and end threads while measured.
 */
function threadCounters(pids: readonly number[], read: (file: string) => number): ThreadCounters | undefined {
  const counters: ThreadCounters = new Map();
  for (const pid of pids) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      return undefined;
    }
    for (const task of tasks) {
      try {
        counters.set(`${pid}/${task}`, read(`/proc/${pid}/task/${task}`));
      } catch {
        // the thread ended
      }
    }
  }
  return counters;
}

/**
 * What the threads did between two snapshots: a thread started since counts from zero; one that ended since
 * drops out (its count between the snapshots is lost with it), so the sum never goes negative as a whole
 * process total would when a busy thread ends.
 */
export function counterDelta(before: ThreadCounters, after: ThreadCounters): number {
  let total = 0;
  for (const [thread, count] of after) total += count - (before.get(thread) ?? 0);
  return total;
}

/** CPU time (user + system) each thread has run so far, in ms, from the scheduler's own count. */
export function runTimesOf(pids: readonly number[]): ThreadCounters | undefined {
  // schedstat's first field: nanoseconds on a CPU, exact (not sampled at clock ticks as /proc/<pid>/stat is).
  return threadCounters(pids, (task) => Number(readFileSync(`${task}/schedstat`, 'utf8').split(' ')[0]) / 1e6);
}

/** Times each thread has gone to sleep and been woken since it started (voluntary context switches). */
export function wakeupsOf(pids: readonly number[]): ThreadCounters | undefined {
  return threadCounters(pids, (task) => {
    const count = Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`${task}/status`, 'utf8'))?.[1]);
    if (!Number.isFinite(count)) throw new Error(`${task}/status has no voluntary_ctxt_switches`);
    return count;
  });
}

const ECHO_SERVER = `
const server = require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

export interface WakeupCost {
  /** CPU per request of a bare Node HTTP server answering back to back, in ms. */
  busyMs: number;
  /** The same with `gapMs` of idleness before each request: the server sleeps and is woken for each. */
  idleMs: number;
  gapMs: number;
}

/**
 * What it costs a process to be woken: a bare Node HTTP server (another process) answering requests back to
 * back, then with `gapMs` of sleep before each. Every hop of a request through the mesh wakes a process, and at
 * low load each wake-up is from idle; on a virtual machine that is far dearer than the work itself.
 */
export async function measureWakeupCost(options: { busy?: number; idle?: number; gapMs?: number } = {}): Promise<WakeupCost | undefined> {
  const { busy = 2_000, idle = 40, gapMs = 100 } = options;
  const server = spawn(process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      server.once('error', reject);
      server.once('exit', (code) => reject(new Error(`the echo server exited (${code}) before listening`)));
    });
    const ask = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const call = request({ host: '127.0.0.1', port, path: '/', agent }, (response) => {
          response.resume();
          response.once('end', () => resolve());
        });
        call.once('error', reject);
        call.end();
      });
    const perRequest = async (count: number, gap: number): Promise<number | undefined> => {
      const before = runTimesOf([server.pid!]);
      for (let index = 0; index < count; index++) {
        if (gap > 0) await new Promise((resolve) => setTimeout(resolve, gap));
        await ask();
      }
      const after = runTimesOf([server.pid!]);
      return before === undefined || after === undefined ? undefined : counterDelta(before, after) / count;
    };
    await perRequest(busy, 0);
    const busyMs = await perRequest(busy, 0);
    const idleMs = await perRequest(idle, gapMs);
    return busyMs === undefined || idleMs === undefined ? undefined : { busyMs, idleMs, gapMs };
  } finally {
    agent.destroy();
    server.kill();
  }
}

/** The Node flags of each side: V8's GC threads change both sides' CPU, so they should match. */
export function nodeFlagsLine(serviceFlags: readonly string[], ownFlags: readonly string[]): string {
  const describe = (flags: readonly string[]) => (flags.length > 0 ? flags.join(' ') : "V8's defaults");
  // Module hooks (`--import tsx`) load code, they do not change the runtime.
  const own = ownFlags.filter((flag) => flag.startsWith('--') && !/^--(import|require|loader|experimental-loader)(=|$)/.test(flag));
  const same = serviceFlags.length === own.length && serviceFlags.every((flag) => own.includes(flag));
  return `node flags: mesh services ${describe(serviceFlags)} (SERVICE_NODE_FLAGS); in-process (this process) ${describe(own)}${same ? '' : ' — the sides differ, so CPU ratios compare unlike processes'}`;
}
