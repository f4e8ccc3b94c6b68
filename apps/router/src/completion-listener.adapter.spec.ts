import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisKeys, type InferenceResultJson } from '@rsmoe/contracts';
import { CompletionListener, CompletionTimeoutError } from './completion-listener.adapter';

const result = (requestId: string): InferenceResultJson => ({
  requestId,
  task: 'caption',
  caption: 'A farmland.',
  experts: [],
  routed: [],
  degraded: false,
  missingExperts: [],
  timings: { queueMs: 0, computeMs: 0, totalMs: 1 },
  packName: 'p',
  packVersion: '1',
  fusionStrategy: 'ordered-dedup',
});

describe('CompletionListener (real Redis pub/sub)', () => {
  const keys = createRedisKeys(`test${randomBytes(4).toString('hex')}`);
  const subscriber = new Redis('redis://127.0.0.1:6379');
  const publisher = new Redis('redis://127.0.0.1:6379');
  const stored = new Map<string, InferenceResultJson>();
  const listener = new CompletionListener(subscriber, keys, async (id) => stored.get(id));
  afterAll(() => {
    subscriber.disconnect();
    publisher.disconnect();
  });

  it('resolves with the result published on the request channel, and forwards partials', async () => {
    const partials: string[] = [];
    const { result: pending } = await listener.listen('r1', 5_000, (partial) => partials.push(partial.text));
    await publisher.publish(keys.partialChannel('r1'), JSON.stringify({ expertId: 'theme', prompt: 'p', text: 'a farmland', status: 'ok', promptTokens: 1, generatedTokens: 2, timings: { queueMs: 0, preprocessMs: 0, visionEncodeMs: 0, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0, computeMs: 0 }, model: 'm', featuresCached: false }));
    await publisher.publish(keys.completionChannel('r2'), JSON.stringify({ requestId: 'r2', result: result('r2') }));
    await publisher.publish(keys.completionChannel('r1'), JSON.stringify({ requestId: 'r1', result: result('r1') }));
    expect((await pending).requestId).toBe('r1');
    expect(partials).toEqual(['a farmland']);
  });

  it('finds a result stored before its subscription was active', async () => {
    stored.set('r3', result('r3'));
    const { result: pending } = await listener.listen('r3', 5_000);
    expect((await pending).caption).toBe('A farmland.');
  });

  it('times out when nothing arrives', async () => {
    const { result: pending } = await listener.listen('r4', 50);
    await expect(pending).rejects.toBeInstanceOf(CompletionTimeoutError);
  });
});
