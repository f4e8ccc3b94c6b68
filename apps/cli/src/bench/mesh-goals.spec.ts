import { describe, expect, it } from 'vitest';
import { batchingGoal, formatGoalLine, goalMet, medianGoals, meshGoals, type GoalCheck, type GoalInputs } from './mesh-goals';

const row = (p50Ms: number, p99Ms: number, requestsPerSecond: number, extra = {}) => ({ p50Ms, p99Ms, requestsPerSecond, ...extra });

const INPUTS: GoalInputs = {
  low: { concurrency: 1, mesh: row(20, 60, 40), inProcess: row(8, 18, 120), rawHop: row(3, 12, 300) },
  high: {
    concurrency: 32,
    mesh: row(300, 800, 90, { cpuMsPerRequest: 15, redisCpuMsPerRequest: 4 }),
    inProcess: row(220, 300, 130, { cpuMsPerRequest: 8 }),
    rawHop: row(40, 60, 600, { redisCommandsPerRequest: 100 }),
  },
  throughputGoal: 0.8,
  batching: { expertId: 'object', concurrency: 16, batchedPerSecond: 90, unbatchedPerSecond: 20 },
};
INPUTS.high.mesh.redisCommandsPerRequest = 180;

describe('meshGoals', () => {
  it('checks the issue’s goals in its order, each on the numbers of the same run', () => {
    const goals = meshGoals(INPUTS);
    expect(goals.map((goal) => [goal.name, goal.value, goal.limit, goalMet(goal)])).toEqual([
      ['cpu/request c=32', 19, 12, false],
      ['redis commands/request c=32', 1.8, 1.5, false],
      ['throughput c=32', 90 / 130, 0.8, false],
      ['overhead p50 c=1', 4, 2, false],
      ['overhead p99 c=1', 42 / 12, 3, false],
      ['micro-batching expert.object c=16', 4.5, 3, true],
    ]);
  });

  it('leaves out the goals whose numbers were not measured', () => {
    const { batching: _batching, ...rest } = INPUTS;
    const names = meshGoals({ ...rest, high: { ...rest.high, rawHop: row(40, 60, 600) } }).map((goal) => goal.name);
    expect(names).toEqual(['cpu/request c=32', 'throughput c=32', 'overhead p50 c=1', 'overhead p99 c=1']);
  });

  it('meets a goal exactly at its limit', () => {
    expect(goalMet({ name: 'x', detail: '', value: 2, kind: 'max', limit: 2, unit: '×' })).toBe(true);
    expect(goalMet({ name: 'x', detail: '', value: 0.8, kind: 'min', limit: 0.8, unit: '×' })).toBe(true);
  });
});

describe('formatGoalLine', () => {
  it('prints value, goal, verdict and how the value was made on one line', () => {
    const [cpu, , throughput] = meshGoals(INPUTS);
    expect(formatGoalLine(cpu)).toBe('goal cpu/request c=32: 19.0 ms (goal ≤ 12.0 ms) MISSED — mesh services 15.0 + Redis 4.0 ms vs in-process 8.0 + 4 ms');
    expect(formatGoalLine(throughput)).toBe('goal throughput c=32: 0.69× (goal ≥ 0.80×) MISSED — mesh 90.0 ÷ in-process 130.0 req/s');
    expect(formatGoalLine({ name: 'batching', detail: 'd', value: 4.5, kind: 'min', limit: 3, unit: '×' })).toBe('goal batching: 4.50× (goal ≥ 3.00×) met — d');
  });

  it('names the floor of the design’s own hops (raw-mesh) on the latency lines when it was measured', () => {
    const [, , , p50, p99] = meshGoals({ ...INPUTS, low: { ...INPUTS.low, designFloor: row(9, 30, 100) } });
    expect(formatGoalLine(p50)).toBe(
      "goal overhead p50 c=1: 4.00× (goal ≤ 2.00×) MISSED — (mesh 20.00 − in-process 8.00 ms) ÷ raw hop 3.00 ms; the design's hops alone (raw-mesh) 9.00 ms = 3.0× the raw hop",
    );
    expect(p99.detail).toMatch(/raw-mesh\) 30\.00 ms = 2\.5× the raw hop$/);
  });

  it('names the runtime’s own batching gain, the ratio’s ceiling, on the micro-batching line when it was measured', () => {
    const runtimeGain = { batchSize: 7, batchedPerSecond: 700, oneByOnePerSecond: 250 };
    expect(formatGoalLine(batchingGoal({ ...INPUTS.batching!, batchedPerSecond: 500, unbatchedPerSecond: 200, runtimeGain }))).toBe(
      'goal micro-batching expert.object c=16: 2.50× (goal ≥ 3.00×) MISSED — default batching 500.0 ÷ MAX_BATCH_SIZE=1 200.0 req/s; the runtime alone gains 2.80× at batch 7',
    );
  });
});

describe('medianGoals', () => {
  const check = (name: string, value: number, detail = `from ${value}`): GoalCheck => ({ name, detail, value, kind: 'max', limit: 2, unit: '×' });

  it('takes each goal from its median round, with that round’s detail and every round’s value', () => {
    const rounds = [
      [check('cpu', 14), check('throughput', 0.9)],
      [check('cpu', 12), check('throughput', 0.7)],
      [check('cpu', 19), check('throughput', 1.1)],
    ];
    expect(medianGoals(rounds)).toEqual([
      check('cpu', 14, 'from 14; median of 3 rounds (14.0, 12.0, 19.0)'),
      check('throughput', 0.9, 'from 0.9; median of 3 rounds (0.90, 0.70, 1.10)'),
    ]);
  });

  it('takes the lower middle round of an even count, and one round as it is', () => {
    expect(medianGoals([[check('cpu', 3)], [check('cpu', 1)]])[0].value).toBe(1);
    expect(medianGoals([[check('cpu', 3)]])).toEqual([check('cpu', 3)]);
  });

  it('refuses rounds whose goals differ', () => {
    expect(() => medianGoals([[check('cpu', 1)], [check('throughput', 1)]])).toThrow(/goal cpu is not in every round/);
  });
});
