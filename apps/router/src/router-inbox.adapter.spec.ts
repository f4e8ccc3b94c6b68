import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisKeys, type ExpertOutputJson, type InferenceResultJson, type RouterInboxMessage } from '@rsmoe/contracts';
import { CompletionTimeoutError, RouterInbox } from './router-inbox.adapter';

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

const output = (text: string): ExpertOutputJson => ({
  expertId: 'theme',
  prompt: 'p',
  text,
  status: 'ok',
  promptTokens: 1,
  generatedTokens: 2,
  timings: { queueMs: 0, preprocessMs: 0, visionEncodeMs: 0, prefillMs: 0, decodeMs: 0, timeToFirstTokenMs: 0, computeMs: 0 },
  model: 'm',
  featuresCached: false,
});

describe('RouterInbox (real Redis pub/sub)', () => {
  const keys = createRedisKeys(`test${randomBytes(4).toString('hex')}`);
  const subscriber = new Redis('redis://127.0.0.1:6379');
  const publisher = new Redis('redis://127.0.0.1:6379');
  const stored = new Map<string, InferenceResultJson>();
  const inbox = new RouterInbox(subscriber, keys.routerInbox('router-a'), async (id) => stored.get(id));
  const send = (message: RouterInboxMessage | string, channel = inbox.channel) =>
    publisher.publish(channel, typeof message === 'string' ? message : JSON.stringify(message));
  beforeAll(() => inbox.start());
  afterAll(() => {
    subscriber.disconnect();
    publisher.disconnect();
  });

  it('hands each request its own reports and result, and ignores other inboxes and malformed messages', async () => {
    const partials: string[] = [];
    const first = inbox.listen('r1', 5_000, (report) => partials.push(report.kind === 'partial' ? report.output.text : `failure of ${report.expertId}: ${report.reason}`));
    const second = inbox.listen('r2', 5_000);
    await send('{not json');
    await send({ kind: 'partial', requestId: 'r1', output: output('a farmland') });
    await send({ kind: 'failure', requestId: 'r1', expertId: 'object', reason: '{"errorCode":"internal","message":"x"}' });
    await send({ kind: 'failure', requestId: 'r1', expertId: '', reason: 'no expert id: malformed' });
    await send({ kind: 'partial', requestId: 'r1', output: output('for another router') }, keys.routerInbox('router-b'));
    await send({ kind: 'result', requestId: 'r2', result: result('r2') });
    await send({ kind: 'result', requestId: 'r1', result: result('r1') });
    expect((await first.result).requestId).toBe('r1');
    expect((await second.result).requestId).toBe('r2');
    expect(partials).toEqual(['a farmland', 'failure of object: {"errorCode":"internal","message":"x"}']);
    expect(inbox.waiting).toBe(0);
  });

  it('times out when nothing arrives, and forgets a cancelled request', async () => {
    const { result: pending } = inbox.listen('r4', 50);
    await expect(pending).rejects.toBeInstanceOf(CompletionTimeoutError);
    const cancelled = inbox.listen('r5', 5_000);
    cancelled.cancel();
    expect(inbox.waiting).toBe(0);
  });

  it('after a reconnect, finds results stored while it was disconnected', async () => {
    const { result: pending } = inbox.listen('r6', 10_000);
    // Drop the connection; until it is back (ioredis retries after 50 ms), what is published is lost to
    // us. The store still has it.
    // Stored before the drop: a reconnect that beats this test's next line must still find it.
    stored.set('r6', result('r6'));
    const closed = once(subscriber, 'close');
    subscriber.disconnect(true);
    await closed;
    await send({ kind: 'result', requestId: 'r6', result: result('r6') });
    expect(Number((await publisher.pubsub('NUMSUB', inbox.channel))[1])).toBe(0);
    expect((await pending).requestId).toBe('r6');
    // And the subscription itself is back.
    const next = inbox.listen('r7', 5_000);
    await send({ kind: 'result', requestId: 'r7', result: result('r7') });
    expect((await next.result).requestId).toBe('r7');
  });
});
