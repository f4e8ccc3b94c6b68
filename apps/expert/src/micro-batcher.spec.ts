import { describe, expect, it } from 'vitest';
import { MicroBatcher } from './micro-batcher';

describe('MicroBatcher', () => {
  it('groups items submitted together, up to the maximum batch size', async () => {
    const calls: number[][] = [];
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        calls.push(items);
        return items.map((x) => x * 10);
      },
      { maxBatchSize: 3, maxWaitMs: 20 },
    );
    const results = await Promise.all([1, 2, 3, 4, 5].map((x) => batcher.submit(x)));
    expect(results).toEqual([10, 20, 30, 40, 50]);
    expect(calls).toEqual([[1, 2, 3], [4, 5]]);
  });

  it('with no wait, gathers items submitted in the same turn of the event loop', async () => {
    const calls: number[][] = [];
    const batcher = new MicroBatcher<number, number>(async (items) => (calls.push(items), items), { maxBatchSize: 8, maxWaitMs: 0 });
    await Promise.all([1, 2, 3].map((x) => batcher.submit(x)));
    expect(calls).toEqual([[1, 2, 3]]);
  });

  it('runs a lone item after the wait', async () => {
    const calls: number[][] = [];
    const batcher = new MicroBatcher<number, number>(async (items) => (calls.push(items), items), { maxBatchSize: 8, maxWaitMs: 5 });
    expect(await batcher.submit(7)).toBe(7);
    expect(calls).toEqual([[7]]);
  });

  it('keeps one failing item from failing its companions', async () => {
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        if (items.includes(2)) throw new Error(`bad item in ${items.join(',')}`);
        return items;
      },
      { maxBatchSize: 4, maxWaitMs: 10 },
    );
    const settled = await Promise.allSettled([1, 2, 3].map((x) => batcher.submit(x)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason.message).toBe('bad item in 2');
  });

  it('gathers items that arrive while a batch computes into the next batch', async () => {
    const calls: number[][] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        calls.push(items);
        if (calls.length === 1) await gate;
        return items;
      },
      { maxBatchSize: 8, maxWaitMs: 0 },
    );
    const first = batcher.submit(1);
    await new Promise((resolve) => setImmediate(resolve));
    const later = [2, 3, 4].map((x) => batcher.submit(x));
    release();
    await Promise.all([first, ...later]);
    expect(calls).toEqual([[1], [2, 3, 4]]);
  });
});
