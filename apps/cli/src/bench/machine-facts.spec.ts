import { describe, expect, it } from 'vitest';
import { counterDelta, nodeFlagsLine, runTimesOf, wakeupsOf } from './machine-facts';

describe('nodeFlagsLine', () => {
  it('names both sides and says nothing more when their runtime flags match (module hooks ignored)', () => {
    const line = nodeFlagsLine(['--single-threaded-gc'], ['--single-threaded-gc', '--import', 'tsx']);
    expect(line).toBe('node flags: mesh services --single-threaded-gc (SERVICE_NODE_FLAGS); in-process (this process) --single-threaded-gc');
  });

  it('warns when the sides run with different flags', () => {
    expect(nodeFlagsLine(['--single-threaded-gc'], ['--require', 'x.cjs'])).toBe(
      "node flags: mesh services --single-threaded-gc (SERVICE_NODE_FLAGS); in-process (this process) V8's defaults — the sides differ, so CPU ratios compare unlike processes",
    );
    expect(nodeFlagsLine([], ['--single-threaded-gc'])).toContain('the sides differ');
  });
});

describe('counterDelta', () => {
  it('counts a thread started since from zero and drops a thread that ended, so an ended busy thread cannot make it negative', () => {
    const before = new Map([
      ['7/7', 100],
      ['7/8', 5_000],
    ]);
    const after = new Map([
      ['7/7', 130],
      ['7/9', 12],
    ]);
    expect(counterDelta(before, after)).toBe(42);
  });
});

describe('runTimesOf and wakeupsOf (this process, /proc)', () => {
  it('read every thread of a live process, and nothing for a process that is gone', () => {
    const before = runTimesOf([process.pid])!;
    let spin = 0;
    for (let index = 0; index < 5e6; index++) spin += index;
    const after = runTimesOf([process.pid])!;
    expect(spin).toBeGreaterThan(0);
    expect(after.size).toBeGreaterThan(1);
    expect(counterDelta(before, after)).toBeGreaterThan(0);
    expect(wakeupsOf([process.pid])!.size).toBeGreaterThan(1);
    expect(runTimesOf([2 ** 22 + 1])).toBeUndefined();
  });
});
