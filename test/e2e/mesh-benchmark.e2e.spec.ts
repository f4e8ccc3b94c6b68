import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packBenchImages, runMeshBenchmark, type MeshBenchmarkReport } from '../../apps/cli/src/bench/mesh-benchmark';
import { DEFAULT_SERVICE_NODE_FLAGS } from '../../apps/cli/src/mesh/mesh-launcher';

const REPO_ROOT = resolve(__dirname, '../..');

/** The goal lines of issue 15, in the order the benchmark prints them. */
const GOAL_NAMES = [/^cpu\/request c=\d+$/, /^redis commands\/request c=\d+$/, /^throughput c=\d+$/, /^overhead p50 c=\d+$/, /^overhead p99 c=\d+$/, /^micro-batching expert\.\w+ c=\d+$/];

/** A short run of `bench mesh` on a pack: every path, both levels, the batching turns and every goal line. */
async function shortRun(packDir: string, lines: string[]): Promise<MeshBenchmarkReport> {
  return runMeshBenchmark({
    packDir,
    imagePaths: packBenchImages(packDir),
    concurrency: [1, 4],
    requests: 8,
    rounds: 2,
    warmup: 4,
    meshWarmup: 8,
    batching: { concurrency: 4, requests: 12, warmup: 4, rounds: 2 },
    throughputGoal: 0.8,
    log: (line) => lines.push(line),
  });
}

function expectWholeReport(report: MeshBenchmarkReport, lines: string[], expertIds: string[]): void {
  for (const path of ['mesh', 'in-process', 'raw-jobs', 'raw-flow', 'raw-mesh']) {
    for (const concurrency of [1, 4]) {
      // Mesh and in-process in both rounds, the raw floors once.
      const rounds = path.startsWith('raw') ? [1] : [1, 2];
      expect(report.rows.filter((candidate) => candidate.path === path && candidate.concurrency === concurrency).map((candidate) => candidate.round), `${path} c=${concurrency}`).toEqual(rounds);
      const row = report.rows.find((candidate) => candidate.path === path && candidate.concurrency === concurrency);
      expect(row!.requestsPerSecond).toBeGreaterThan(0);
      expect(row!.p99Ms).toBeGreaterThanOrEqual(row!.p50Ms);
    }
  }
  const mesh = report.rows.find((row) => row.path === 'mesh' && row.concurrency === 4)!;
  expect(Object.keys(mesh.cpuMsPerRequestByService ?? {})).toEqual(expect.arrayContaining(['gateway', 'router', 'aggregator', ...expertIds.map((id) => `expert.${id}`)]));
  expect(mesh.redisCommandsPerRequest).toBeGreaterThan(0);
  expect(report.rows.find((row) => row.path === 'raw-jobs' && row.concurrency === 4)!.redisCommandsPerRequest).toBeGreaterThan(0);
  expect(lines.filter((line) => /latency split p50: router \d+ ms .*, edge -?\d+\.\d ms/.test(line))).toHaveLength(4);
  expect(lines.filter((line) => /^machine: a memory-bound loop runs \d+\.\d\d× slower on each of \d+ cores at once than alone/.test(line))).toHaveLength(1);
  expect(lines.filter((line) => /^machine: a process woken from idle to answer a request spends \d+\.\d\d ms of CPU, \d+\.\d{3} ms when busy/.test(line))).toHaveLength(1);
  // Counted for every path on this machine (/proc): the hand-offs that wake a process. In-process, one thread
  // computing back to back, may wake none at all.
  for (const path of ['mesh', 'raw-jobs', 'raw-mesh']) expect(report.rows.find((row) => row.path === path)!.wakeupsPerRequest, path).toBeGreaterThan(0);
  expect(report.rows.find((row) => row.path === 'in-process')!.wakeupsPerRequest).toBeGreaterThanOrEqual(0);
  // The services' GC mode is printed with this process's: the two sides' CPU compare like for like only when they match.
  expect(lines.filter((line) => line.startsWith(`node flags: mesh services ${DEFAULT_SERVICE_NODE_FLAGS} (SERVICE_NODE_FLAGS); in-process (this process) `))).toHaveLength(1);
  expect(lines.filter((line) => /^mesh idle +cpu ms per second by service: router \d+\.\d/.test(line))).toHaveLength(1);
  // The mesh's warm-up, in chunks of `warmup`: the services' CPU per request in its first and last chunk.
  expect(lines.filter((line) => /^mesh warm-up +8 requests at c=8: the services' cpu \d+\.\d ms\/req in the first 4, \d+\.\d in the last$/.test(line))).toHaveLength(1);
  expect(lines.filter((line) => /alone .* \(round \d\)$/.test(line))).toHaveLength(2);
  expect(report.batching!.batchedPerSecond).toBeGreaterThan(0);
  expect(report.batching!.unbatchedPerSecond).toBeGreaterThan(0);
  // The ratio's ceiling: the same model in this process, at the batch size the batched expert formed.
  expect(report.batching!.runtimeGain.batchSize).toBeGreaterThanOrEqual(1);
  expect(report.batching!.runtimeGain.batchedPerSecond).toBeGreaterThan(0);
  expect(report.batching!.runtimeGain.oneByOnePerSecond).toBeGreaterThan(0);
  expect(lines.filter((line) => /in-process +the runtime alone \(the ratio's ceiling\): batches of \d+ \(the expert's mean batch \d+\.\d\) .*: \d+\.\d\d×; the expert's batching reaches \d+ % of it$/.test(line))).toHaveLength(1);
  expect(report.goals.map((goal) => goal.name)).toEqual(GOAL_NAMES.map((pattern) => expect.stringMatching(pattern)));
  const goalLines = lines.filter((line) => line.startsWith('goal '));
  expect(goalLines).toHaveLength(GOAL_NAMES.length);
  for (const line of goalLines) expect(line).toMatch(/\(goal [≤≥] [\d.]+(×| ms)\) (met|MISSED) — /);
  // The routed experts' generation times per request, both sides, at the lowest level only (one job per batch).
  for (const path of ['mesh', 'in-process']) {
    const low = report.rows.find((row) => row.path === path && row.concurrency === 1)!;
    expect(Object.keys(low.generationMsPerRequestByExpert ?? {}), path).toEqual(['expert.theme', 'expert.object', 'expert.relation']);
    for (const ms of Object.values(low.generationMsPerRequestByExpert!)) expect(ms, path).toBeGreaterThan(0);
    expect(report.rows.find((row) => row.path === path && row.concurrency === 4)!.generationMsPerRequestByExpert, path).toBeUndefined();
  }
  // The latency goals name the floor of the design's own hops: no-op processes in the mesh's places.
  // (one per expert routed for captions: models/demo's region and pixel experts are not on that path).
  const floorServices = Object.keys(report.rows.find((row) => row.path === 'raw-mesh')!.cpuMsPerRequestByService ?? {});
  expect(floorServices).toEqual(expect.arrayContaining(['edge', 'router', 'expert.theme', 'expert.object', 'expert.relation']));
  expect(floorServices.every((name) => ['edge', 'router', ...expertIds.map((id) => `expert.${id}`)].includes(name))).toBe(true);
  expect(goalLines.filter((line) => /^goal overhead p\d\d c=1: .*; the design's hops alone \(raw-mesh\) \d+\.\d\d ms = \d+\.\d× the raw hop; median/.test(line))).toHaveLength(2);
  expect(goalLines.filter((line) => /^goal micro-batching .*; the runtime alone gains \d+\.\d\d× at batch \d+$/.test(line))).toHaveLength(1);
  // The mesh's goals read the median of the two rounds; micro-batching, the median of its own turns.
  // A round's overhead is negative when, in so short a run, in-process was the slower side.
  expect(goalLines.filter((line) => /; median of 2 rounds \(-?[\d.]+, -?[\d.]+\)$/.test(line))).toHaveLength(GOAL_NAMES.length - 1);
}

/**
 * `npm run bench:mesh` keeps working, on the fixture pack and on models/demo: a short run through every path
 * (the whole mesh as processes, in-process, the raw BullMQ floors, one expert alone in both batching modes)
 * and every goal line. Numbers are not asserted: the benchmark reports them.
 */
describe('bench mesh', { timeout: 240_000 }, () => {
  it('runs every path and prints every goal on the fixture pack', async () => {
    const lines: string[] = [];
    const report = await shortRun(resolve(REPO_ROOT, 'models/fixtures/tiny-pack'), lines);
    expectWholeReport(report, lines, ['theme', 'object', 'relation']);
  });

  it('runs on models/demo with the pack’s own sample scenes', async () => {
    const packDir = resolve(REPO_ROOT, 'models/demo');
    expect(packBenchImages(packDir).map((path) => path.slice(packDir.length + 1))).toEqual(['golden/golden-0.png', 'golden/golden-1.png']);
    const lines: string[] = [];
    const report = await shortRun(packDir, lines);
    expectWholeReport(report, lines, ['theme', 'object', 'relation', 'region', 'pixel']);
  });
});
