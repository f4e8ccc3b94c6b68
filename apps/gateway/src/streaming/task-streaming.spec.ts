import 'reflect-metadata';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskCall } from '../adapters/router.port';
import { RouterCallError } from '../errors/router-status.mapping';
import { cannedResult, images, multipartForm, startTestGateway, type TestGateway } from '../testing/gateway-test-kit';

/** The server-sent events of a body: each event's name and its data parsed as JSON. */
function parseEvents(text: string): Array<{ event: string | undefined; data: unknown }> {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((line) => line.startsWith('event: '))?.slice('event: '.length);
      const data = lines.find((line) => line.startsWith('data: '))!.slice('data: '.length);
      return { event, data: JSON.parse(data) as unknown };
    });
}

/** The task endpoints with `Accept: text/event-stream`: real HTTP and Redis, a fake router that streams. */
describe('gateway: streaming the task endpoints (server-sent events)', () => {
  let test: TestGateway;
  let png: Buffer;

  beforeAll(async () => {
    test = await startTestGateway();
    png = await images.png(40, 20);
  });
  afterAll(() => test?.close());
  beforeEach(() => {
    test.router.behaviour = undefined;
    test.router.streamBehaviour = undefined;
  });

  const post = (path: string, fields: Record<string, string | Buffer>, init: RequestInit = {}) =>
    fetch(`${test.base}${path}`, { method: 'POST', headers: { accept: 'text/event-stream' }, body: multipartForm(fields), ...init });

  it('every task streams: one partial event per expert, then the result event with the JSON answer’s body', async () => {
    const cases: Array<[string, string, Record<string, string | Buffer>]> = [
      ['/v1/captions', 'caption', { image: png }],
      ['/v1/vqa', 'vqa', { image: png, question: 'Is there a road?' }],
      ['/v1/classify', 'classification', { image: png }],
      ['/v1/grounding', 'grounding', { image: png, query: 'the runway' }],
      ['/v1/referring', 'referring', { image: png, box: '1,2,20,10' }],
      ['/v1/segmentation', 'segmentation', { image: png, classes: 'water,building' }],
      ['/v1/changes', 'change', { before: png, after: png }],
    ];
    for (const [path, task, fields] of cases) {
      const whole = await fetch(`${test.base}${path}`, { method: 'POST', body: multipartForm(fields) });
      expect(whole.status).toBe(200);
      const expected = (await whole.json()) as Record<string, unknown>;
      const response = await post(path, fields);
      expect({ path, status: response.status, type: response.headers.get('content-type') }).toEqual({ path, status: 200, type: 'text/event-stream; charset=utf-8' });
      const call = test.router.calls.at(-1)!;
      expect({ path, method: call.method, task: (call.call as TaskCall).task }).toEqual({ path, method: 'stream', task });
      const events = parseEvents(await response.text());
      expect(events.map((event) => event.event)).toEqual(['partial', 'result']);
      expect(events[0].data).toMatchObject({ expert: 'theme', partial: { expertId: 'theme', status: 'ok' } });
      // The same body as the JSON answer, but for the request id (each request has its own).
      expect({ ...(events[1].data as object), requestId: expected.requestId }).toEqual(expected);
    }
  });

  it('a refusal before the first event is the usual JSON error with its status', async () => {
    const response = await post('/v1/vqa', { image: png });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toMatchObject({ error: { code: 'missing_question' } });
    test.router.streamBehaviour = async () => {
      throw new RouterCallError(GrpcStatus.UNAVAILABLE, 'down');
    };
    const unavailable = await post('/v1/captions', { image: png });
    expect(unavailable.status).toBe(503);
    expect(await unavailable.json()).toMatchObject({ error: { code: 'router_unavailable' } });
  });

  it('a failure after the first event ends the stream with an error event', async () => {
    test.router.streamBehaviour = async (call, onPartial) => {
      onPartial(cannedResult(call.requestId).experts[0]);
      await new Promise((resolve) => setTimeout(resolve, 5));
      throw new RouterCallError(GrpcStatus.DEADLINE_EXCEEDED, 'late');
    };
    const response = await post('/v1/captions', { image: png });
    expect(response.status).toBe(200);
    const events = parseEvents(await response.text());
    expect(events.map((event) => event.event)).toEqual(['partial', 'error']);
    expect(events[1].data).toMatchObject({ error: { code: 'deadline_exceeded', requestId: response.headers.get('x-request-id') } });
  });

  it('a client that goes away mid-stream cancels the router call', async () => {
    let aborted!: () => void;
    const cancelled = new Promise<void>((resolve) => (aborted = resolve));
    test.router.streamBehaviour = (call, onPartial) => {
      onPartial(cannedResult(call.requestId).experts[0]);
      return new Promise((_resolve, reject) =>
        call.signal?.addEventListener('abort', () => {
          aborted();
          reject(new RouterCallError(GrpcStatus.CANCELLED, 'cancelled'));
        }),
      );
    };
    const abort = new AbortController();
    const response = await post('/v1/captions', { image: png }, { signal: abort.signal });
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^event: partial\n/);
    abort.abort();
    await cancelled;
  });

  it('JSON stays the default; Prefer: respond-async wins over the event stream', async () => {
    const plain = await fetch(`${test.base}/v1/captions`, { method: 'POST', body: multipartForm({ image: png }) });
    expect(plain.headers.get('content-type')).toMatch(/^application\/json/);
    expect(test.router.calls.at(-1)!.method).toBe('caption');
    const async = await post('/v1/captions', { image: png }, { headers: { accept: 'text/event-stream', prefer: 'respond-async' } });
    expect(async.status).toBe(202);
  });
});
