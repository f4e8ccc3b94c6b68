// RSUniVLM's tasks on the committed demo pack, served by the real mesh, on held-out synthetic scenes (dataset
// seed 9999, which no training image shares): the floors of "RSUniVLM's tasks end to end". The full-size run
// whose numbers docs/evaluation.md reports is `npx tsx tools/eval/demo-tasks.ts --count 300`.
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateDemoTasks, type DemoTaskReport } from '../../tools/eval/demo-tasks';
import { startMesh, type RunningMesh } from './mesh-fixture';

const DEMO_PACK = resolve(__dirname, '../../models/demo');
const COUNTS = { classification: 120, grounding: 120, referring: 60, segmentation: 60, change: 60 };

describe("the demo pack's RSUniVLM tasks through the running mesh (held-out scenes)", { timeout: 600_000 }, () => {
  let running: RunningMesh;
  let report: DemoTaskReport;

  beforeAll(async () => {
    running = await startMesh({}, DEMO_PACK);
    report = await evaluateDemoTasks(running.url, COUNTS);
    process.stdout.write(`demo pack tasks on ${JSON.stringify(COUNTS)}:\n${JSON.stringify({ ...report, examples: undefined }, null, 1)}\n`);
  }, 600_000);

  afterAll(async () => {
    await running?.stop();
  });

  it('answers every request with 200, or 502 experts_failed where the expert wrote no box or mask (at most 1%)', () => {
    const total = Object.values(COUNTS).reduce((sum, count) => sum + count, 0);
    const other = Object.keys(report.failures).filter((key) => !key.endsWith(' 502 experts_failed'));
    expect(other, JSON.stringify(report.examples)).toEqual([]);
    expect(Object.values(report.failures).reduce((sum, count) => sum + count, 0)).toBeLessThanOrEqual(total * 0.01);
  });

  it('classifies at least 90% of the scenes right', () => {
    expect(report.classification.count).toBe(COUNTS.classification);
    expect(report.classification.accuracy, JSON.stringify(report.examples.classification)).toBeGreaterThanOrEqual(0.9);
  });

  it('grounds a phrase with Acc@0.5 of at least 0.5', () => {
    expect(report.grounding.count).toBeGreaterThan(COUNTS.grounding * 0.9);
    expect(report.grounding.accAt05).toBeGreaterThanOrEqual(0.5);
  });

  it('segments the asked classes with mIoU of at least 0.5', () => {
    expect(report.segmentation.count).toBeGreaterThan(COUNTS.segmentation * 0.9);
    expect(report.segmentation.mIoU).toBeGreaterThanOrEqual(0.5);
  });

  it('finds the changed pixels of a pair with F1 of at least 0.5', () => {
    expect(report.changeMask.F1).toBeGreaterThanOrEqual(0.5);
  });

  it('names the referred object’s class and writes change captions that share words with the truth', () => {
    expect(report.referring.objectClass).toBeGreaterThanOrEqual(0.5);
    // Measured 0.165 on 300 pairs (docs/evaluation.md): the floor sits below it.
    expect(report.changeCaption.Bleu_4).toBeGreaterThan(0.12);
  });
});
