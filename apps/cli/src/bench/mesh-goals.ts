/** One goal of issue 15, checked on numbers measured in the same run. */
export interface GoalCheck {
  /** Short name, e.g. `cpu/request c=32`. */
  name: string;
  /** How the value was made, with the numbers it came from. */
  detail: string;
  value: number;
  /** `max`: value ≤ limit meets the goal; `min`: value ≥ limit does. */
  kind: 'max' | 'min';
  limit: number;
  /** Appended to value and limit (`ms`, `×`). */
  unit: string;
}

export function goalMet(check: GoalCheck): boolean {
  return check.kind === 'max' ? check.value <= check.limit : check.value >= check.limit;
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** `goal cpu/request c=32: 19.1 ms (goal ≤ 12.1 ms) MISSED — mesh 15.0 + Redis 4.1 vs in-process 8.1 + 4`. */
export function formatGoalLine(check: GoalCheck): string {
  const unit = check.unit === '×' ? '×' : ` ${check.unit}`;
  const comparison = check.kind === 'max' ? '≤' : '≥';
  return `goal ${check.name}: ${formatNumber(check.value)}${unit} (goal ${comparison} ${formatNumber(check.limit)}${unit}) ${goalMet(check) ? 'met' : 'MISSED'} — ${check.detail}`;
}

/** One path at one concurrency, as the mesh benchmark measured it (the fields the goals read). */
export interface GoalRow {
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  /** CPU per request of the processes doing the work (the services for the mesh; this process in-process). */
  cpuMsPerRequest?: number;
  /** Redis's own CPU per request (used_cpu_sys + used_cpu_user). */
  redisCpuMsPerRequest?: number;
  /** Redis commands per request (INFO commandstats calls, scripts' commands included). */
  redisCommandsPerRequest?: number;
}

export interface GoalInputs {
  /** The lowest concurrency level (c=1 in the issue) and the highest (c=32). */
  /**
   * `designFloor`: the design's hops with no-op processes at every stop (the benchmark's `raw-mesh`), shown
   * beside the latency goals as the part of the overhead no code of the mesh can remove on this machine.
   */
  low: { concurrency: number; mesh: GoalRow; inProcess: GoalRow; rawHop: GoalRow; designFloor?: GoalRow };
  high: { concurrency: number; mesh: GoalRow; inProcess: GoalRow; rawHop: GoalRow };
  /** Mesh ÷ in-process throughput the pack must reach (0.8 on the tiny pack, 0.9 where compute is real). */
  throughputGoal: number;
  /** One expert alone at the same concurrency, default batching vs MAX_BATCH_SIZE=1; absent when not run. */
  batching?: BatchingComparison & { runtimeGain?: RuntimeBatchGain };
}

/** One expert alone at one concurrency: requests per second with its default batching and with MAX_BATCH_SIZE=1. */
export interface BatchingComparison {
  expertId: string;
  concurrency: number;
  batchedPerSecond: number;
  unbatchedPerSecond: number;
}

/** The same model in-process, in batches of the expert's mean batch size and one by one: the ratio's ceiling. */
export interface RuntimeBatchGain {
  batchSize: number;
  batchedPerSecond: number;
  oneByOnePerSecond: number;
}

/** The goals, in its order, from one run's rows; a goal whose numbers are missing is left out. */
export function meshGoals(inputs: GoalInputs): GoalCheck[] {
  const checks: GoalCheck[] = [];
  const { high, low } = inputs;
  const meshCpu = high.mesh.cpuMsPerRequest;
  const redisCpu = high.mesh.redisCpuMsPerRequest;
  const localCpu = high.inProcess.cpuMsPerRequest;
  if (meshCpu !== undefined && redisCpu !== undefined && localCpu !== undefined) {
    checks.push({
      name: `cpu/request c=${high.concurrency}`,
      detail: `mesh services ${meshCpu.toFixed(1)} + Redis ${redisCpu.toFixed(1)} ms vs in-process ${localCpu.toFixed(1)} + 4 ms`,
      value: meshCpu + redisCpu,
      kind: 'max',
      limit: localCpu + 4,
      unit: 'ms',
    });
  }
  const meshCommands = high.mesh.redisCommandsPerRequest;
  const rawCommands = high.rawHop.redisCommandsPerRequest;
  if (meshCommands !== undefined && rawCommands !== undefined && rawCommands > 0) {
    checks.push({
      name: `redis commands/request c=${high.concurrency}`,
      detail: `mesh ${meshCommands.toFixed(1)} ÷ raw BullMQ jobs (same fan-out) ${rawCommands.toFixed(1)}`,
      value: meshCommands / rawCommands,
      kind: 'max',
      limit: 1.5,
      unit: '×',
    });
  }
  checks.push({
    name: `throughput c=${high.concurrency}`,
    detail: `mesh ${high.mesh.requestsPerSecond.toFixed(1)} ÷ in-process ${high.inProcess.requestsPerSecond.toFixed(1)} req/s`,
    value: high.mesh.requestsPerSecond / high.inProcess.requestsPerSecond,
    kind: 'min',
    limit: inputs.throughputGoal,
    unit: '×',
  });
  const floorOf = (percentile: 'p50Ms' | 'p99Ms'): string =>
    low.designFloor
      ? `; the design's hops alone (raw-mesh) ${low.designFloor[percentile].toFixed(2)} ms = ${(low.designFloor[percentile] / low.rawHop[percentile]).toFixed(1)}× the raw hop`
      : '';
  const overheadP50 = low.mesh.p50Ms - low.inProcess.p50Ms;
  checks.push({
    name: `overhead p50 c=${low.concurrency}`,
    detail: `(mesh ${low.mesh.p50Ms.toFixed(2)} − in-process ${low.inProcess.p50Ms.toFixed(2)} ms) ÷ raw hop ${low.rawHop.p50Ms.toFixed(2)} ms${floorOf('p50Ms')}`,
    value: overheadP50 / low.rawHop.p50Ms,
    kind: 'max',
    limit: 2,
    unit: '×',
  });
  const overheadP99 = low.mesh.p99Ms - low.inProcess.p99Ms;
  checks.push({
    name: `overhead p99 c=${low.concurrency}`,
    detail: `(mesh ${low.mesh.p99Ms.toFixed(2)} − in-process ${low.inProcess.p99Ms.toFixed(2)} ms) ÷ raw hop ${low.rawHop.p99Ms.toFixed(2)} ms${floorOf('p99Ms')}`,
    value: overheadP99 / low.rawHop.p99Ms,
    kind: 'max',
    limit: 3,
    unit: '×',
  });
  if (inputs.batching) checks.push(batchingGoal(inputs.batching));
  return checks;
}

/** Micro-batching pays: one expert's throughput with its default batching ÷ with MAX_BATCH_SIZE=1. */
export function batchingGoal(batching: NonNullable<GoalInputs['batching']>): GoalCheck {
  return {
    name: `micro-batching expert.${batching.expertId} c=${batching.concurrency}`,
    detail:
      `default batching ${batching.batchedPerSecond.toFixed(1)} ÷ MAX_BATCH_SIZE=1 ${batching.unbatchedPerSecond.toFixed(1)} req/s` +
      (batching.runtimeGain
        ? `; the runtime alone gains ${(batching.runtimeGain.batchedPerSecond / batching.runtimeGain.oneByOnePerSecond).toFixed(2)}× at batch ${batching.runtimeGain.batchSize}`
        : ''),
    value: batching.batchedPerSecond / batching.unbatchedPerSecond,
    kind: 'min',
    limit: 3,
    unit: '×',
  };
}

/**
 * Each goal of several rounds (same goals, same order) as its median round's check: value and detail from
 * that round, so the numbers on a line belong together, with every round's value appended. With an even count
 * the lower of the two middle rounds counts.
 */
export function medianGoals(rounds: readonly GoalCheck[][]): GoalCheck[] {
  if (rounds.length === 0) return [];
  if (rounds.length === 1) return rounds[0];
  return rounds[0].map((first, index) => {
    const checks = rounds.map((round) => round[index]);
    if (checks.some((check) => check?.name !== first.name)) throw new Error(`goal ${first.name} is not in every round in the same place`);
    const median = [...checks].sort((a, b) => a.value - b.value)[Math.floor((checks.length - 1) / 2)];
    return { ...median, detail: `${median.detail}; median of ${checks.length} rounds (${checks.map((check) => formatNumber(check.value)).join(', ')})` };
  });
}
