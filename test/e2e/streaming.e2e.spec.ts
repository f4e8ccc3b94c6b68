// Streaming through the real mesh (gateway, router, experts and aggregator as processes, real Redis and gRPC):
// partials arrive over server-sent events as each expert finishes, and a client that goes away mid-stream
// leaves no queued job, no stored image and no result behind.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisKeys, expertJobId } from '@rsmoe/contracts';
import { startMesh, testImage, type RunningMesh } from './mesh-fixture';

/** The server-sent events of a body so far: each event's name and its parsed data. */
function parseEvents(text: string): Array<{ event: string; data: Record<string, unknown> }> {
  return text
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => {
      const lines = block.split('\n');
      return {
        event: lines.find((line) => line.startsWith('event: '))?.slice(7) ?? 'message',
        data: JSON.parse(lines.find((line) => line.startsWith('data: '))!.slice(6)) as Record<string, unknown>,
      };
    });
}

const form = (image: Buffer): FormData => {
  const data = new FormData();
  data.append('image', new Blob([new Uint8Array(image)]), 'scene.png');
  return data;
};

describe('streaming through the running mesh', { timeout: 180_000 }, () => {
  let running: RunningMesh;

  beforeAll(async () => {
    running = await startMesh();
  });

  afterAll(async () => {
    await running?.stop();
  });

  it('streams a partial per expert, then the result: the same caption as the JSON answer', async () => {
    const image = await testImage(301);
    const whole = (await (await fetch(`${running.url}/v1/captions`, { method: 'POST', body: form(image) })).json()) as { caption: string };
    const response = await fetch(`${running.url}/v1/captions`, { method: 'POST', body: form(image), headers: { accept: 'text/event-stream' } });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events = parseEvents(await response.text());
    const experts = running.manifest.experts.map((expert) => expert.id);
    expect(events.map((event) => event.event)).toEqual([...experts.map(() => 'partial'), 'result']);
    expect(events.slice(0, -1).map((event) => event.data.expert).sort()).toEqual([...experts].sort());
    expect(events.at(-1)!.data.caption).toBe(whole.caption);
  });

  it('a client that goes away mid-stream: the waiting job is withdrawn, the image and the request’s keys erased, no result stored', async () => {
    const keys = createRedisKeys(running.prefix);
    // One expert's queue is paused: its job waits (its worker is alive, so the router routes to it).
    const [held] = running.manifest.experts.map((expert) => expert.id).slice(-1);
    const queue = running.queues.get(held)!;
    await queue.pause();
    try {
      const image = await testImage(302);
      const sha256 = createHash('sha256').update(image).digest('hex');
      const abort = new AbortController();
      const response = await fetch(`${running.url}/v1/captions`, { method: 'POST', body: form(image), headers: { accept: 'text/event-stream' }, signal: abort.signal });
      const requestId = response.headers.get('x-request-id')!;
      const reader = response.body!.getReader();
      let text = '';
      while (!text.includes('event: partial')) text += new TextDecoder().decode((await reader.read()).value);
      // The held expert's job is in its queue; the image is stored.
      expect(await queue.getJob(expertJobId(requestId, held))).toBeDefined();
      expect(await running.redis.exists(keys.blobKey(sha256))).toBe(1);
      abort.abort();
      await expect.poll(async () => (await queue.getJob(expertJobId(requestId, held))) === undefined, { timeout: 10_000 }).toBe(true);
      await expect
        .poll(() => running.redis.exists(keys.blobKey(sha256), keys.requestImagesKey(requestId)), { timeout: 10_000 })
        .toBe(0);
      // Past the moment any fuse could have happened, still no result.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await running.redis.exists(keys.resultKey(requestId))).toBe(0);
    } finally {
      await queue.resume();
    }
  });
});
