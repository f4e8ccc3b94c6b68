import { describe, expect, it } from 'vitest';
import { BatchItemAbortedError, MicroBatcher } from './micro-batcher';

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

describe('MicroBatcher: items past their deadline', () => {
  it('drops an item whose signal fired while it waited, never computing it; its companions run', async () => {
    const calls: number[][] = [];
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        calls.push(items);
        if (items.includes(1)) await blocked;
        return items.map((x) => x * 10);
      },
      { maxBatchSize: 4, maxWaitMs: 0 },
    );
    const first = batcher.submit(1);
    await new Promise((resolve) => setImmediate(resolve));
    // Items 2 and 3 wait behind the running batch; 2's deadline passes meanwhile.
    const deadline = new AbortController();
    const second = batcher.submit(2, deadline.signal);
    const third = batcher.submit(3, new AbortController().signal);
    expect(batcher.pending).toBe(2);
    deadline.abort(Object.assign(new Error('fuse point passed'), { name: 'TimeoutError' }));
    const dropped = await second.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(dropped).toBeInstanceOf(BatchItemAbortedError);
    expect((dropped as BatchItemAbortedError).reason).toMatchObject({ name: 'TimeoutError' });
    expect(batcher.pending).toBe(1);
    release();
    expect(await first).toBe(10);
    expect(await third).toBe(30);
    expect(calls).toEqual([[1], [3]]);
  });

  it('refuses an item already aborted, and drops at flush one whose signal reads aborted without an event', async () => {
    const calls: number[][] = [];
    const batcher = new MicroBatcher<number, number>(async (items) => (calls.push(items), items), { maxBatchSize: 8, maxWaitMs: 5 });
    await expect(batcher.submit(1, AbortSignal.abort())).rejects.toBeInstanceOf(BatchItemAbortedError);
    let expired = false;
    const clockSignal = { get aborted() { return expired; }, reason: new Error('late'), addEventListener: () => undefined, removeEventListener: () => undefined } as unknown as AbortSignal;
    const late = batcher.submit(2, clockSignal);
    const onTime = batcher.submit(3);
    expired = true;
    await expect(late).rejects.toBeInstanceOf(BatchItemAbortedError);
    expect(await onTime).toBe(3);
    expect(calls).toEqual([[3]]);
  });
});
