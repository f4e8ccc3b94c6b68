import 'reflect-metadata';
import { createHash, randomBytes } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { createRedisKeys } from '@rsmoe/contracts';
import OpenAI from 'openai';
import type { ChatCompletionContentPart } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AnswerCall, TaskCall } from '../adapters/router.port';
import { RouterCallError } from '../errors/router-status.mapping';
import { cannedResult, createTestApiKey, images, startTestGateway, type FakeRouter, type TestGateway } from '../testing/gateway-test-kit';
import type { ChatCompletion } from './chat-completion';

const MODEL = 'test-pack';

const dataUrl = (png: Buffer): string => `data:image/png;base64,${png.toString('base64')}`;
const imagePart = (png: Buffer): ChatCompletionContentPart => ({ type: 'image_url', image_url: { url: dataUrl(png) } });
/** The completion as this gateway answers it: OpenAI's, plus the mesh's answer in `rsmoe`. */
const withMeshAnswer = (completion: unknown): ChatCompletion => completion as ChatCompletion;
const textPart = (text: string): ChatCompletionContentPart => ({ type: 'text', text });

/** The refusal an OpenAI client call ends with: its status and the gateway's error code. */
async function refusal(call: Promise<unknown>): Promise<{ status: number | undefined; code: unknown }> {
  const error = await call.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return { status: (error as InstanceType<typeof OpenAI.APIError>).status, code: (error as InstanceType<typeof OpenAI.APIError>).code };
}

/** The official `openai` client against the in-process gateway: real HTTP and Redis, a fake router. */
describe('gateway: OpenAI-compatible chat completions', () => {
  let test: TestGateway;
  let router: FakeRouter;
  let client: OpenAI;
  let png: Buffer;

  beforeAll(async () => {
    test = await startTestGateway();
    router = test.router;
    client = new OpenAI({ apiKey: 'unused', baseURL: `${test.base}/v1`, maxRetries: 0 });
    png = await images.png(40, 20);
  });

  afterAll(() => test?.close());

  beforeEach(() => {
    router.behaviour = undefined;
  });

  const lastCall = () => router.calls.at(-1)!;

  it('lists the loaded pack as the one model', async () => {
    const models = await client.models.list();
    expect(models.data.map(({ id, object, owned_by: owner }) => ({ id, object, owner }))).toEqual([{ id: MODEL, object: 'model', owner: 'rsmoe-mesh' }]);
  });

  it('an image with no text is a caption: the completion carries the text, the usage and the mesh answer', async () => {
    const completion = withMeshAnswer(await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png)] }], max_tokens: 24 }));
    const call = lastCall();
    expect(call.method).toBe('caption');
    expect(call.call.params).toEqual({ maxNewTokens: 24, doSample: false });
    expect(completion).toMatchObject({
      id: `chatcmpl-${call.call.requestId}`,
      object: 'chat.completion',
      model: MODEL,
      choices: [{ index: 0, message: { role: 'assistant', content: 'a residential area. there are many buildings.' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 },
      rsmoe: { task: 'caption', requestId: call.call.requestId, packName: MODEL },
    });
    expect(completion.created).toBeCloseTo(Date.now() / 1000, -2);
  });

  it('an untagged question with one image is VQA; [VQA] too; sampling fields become GenerationParams', async () => {
    const untagged = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'system', content: 'You are a remote sensing assistant.' },
        { role: 'user', content: [imagePart(png), textPart('Is there a road?')] },
      ],
      temperature: 0.7,
      top_p: 0.9,
      seed: 7,
      stop: 'END',
    });
    expect(lastCall().method).toBe('answer');
    expect((lastCall().call as AnswerCall).question).toBe('Is there a road?');
    expect(lastCall().call.params).toEqual({ doSample: true, temperature: 0.7, topP: 0.9, seed: 7, stopStrings: ['END'] });
    expect(untagged.choices[0].message.content).toBe('yes');
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png), textPart('[VQA] How many trees?')] }] });
    expect((lastCall().call as AnswerCall).question).toBe('How many trees?');
  });

  it('[VG] is grounding: the phrase goes to the router, the boxes come back as RSUniVLM writes them', async () => {
    const completion = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png), textPart('[VG] the runway')] }] });
    const call = lastCall().call as TaskCall;
    expect(call).toMatchObject({ task: 'grounding', query: 'the runway' });
    expect(completion.choices[0].message.content).toBe('[25, 25, 75, 50]');
    expect(withMeshAnswer(completion).rsmoe).toMatchObject({ task: 'grounding', boxes: [{ phrase: 'the runway', boxPx: [10, 5, 30, 10] }] });
  });

  it('[REF] reads its box in percent; [CLS] answers the label; [SEG] classes answer their areas', async () => {
    const referring = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png), textPart('[REF] [10, 20, 50, 80]')] }] });
    const box = (lastCall().call as TaskCall).box!;
    expect([box.x1, box.y1, box.x2, box.y2].map((value) => Math.round(value * 1e6) / 1e6)).toEqual([10, 20, 50, 80]);
    expect(referring.choices[0].message.content).toBe('a storage tank.');
    const label = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png), textPart('[CLS]')] }] });
    expect(label.choices[0].message.content).toBe('farmland');
    const segmentation = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png), textPart('[SEG] water, building')] }] });
    expect((lastCall().call as TaskCall).classes).toEqual(['water', 'building']);
    expect(segmentation.choices[0].message.content).toBe('others: 50.0%, water: 50.0%, building: 0.0%');
  });

  it('two images are a change: before then after, the change caption as text', async () => {
    const after = await images.png(40, 20);
    const completion = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png), imagePart(after), textPart('[CCD] what changed?')] }] });
    const call = lastCall().call as TaskCall;
    expect(call).toMatchObject({ task: 'change', changeOutput: 'caption' });
    expect(call.images).toHaveLength(2);
    expect(completion.choices[0].message.content).toBe('two buildings were built.');
  });

  it('streams every task: the role, one chunk per expert partial (empty delta, rsmoe {expert, partial}), the answer text, the usage, [DONE]', async () => {
    const after = await images.png(40, 20);
    const prompts: Array<{ task: string; content: ChatCompletionContentPart[] }> = [
      { task: 'caption', content: [imagePart(png)] },
      { task: 'vqa', content: [imagePart(png), textPart('Is there a road?')] },
      { task: 'classification', content: [imagePart(png), textPart('[CLS]')] },
      { task: 'grounding', content: [imagePart(png), textPart('[VG] the runway')] },
      { task: 'referring', content: [imagePart(png), textPart('[REF] [10, 20, 50, 80]')] },
      { task: 'segmentation', content: [imagePart(png), textPart('[SEG] water, building')] },
      { task: 'change', content: [imagePart(png), imagePart(after), textPart('[CCD]')] },
    ];
    for (const { task, content } of prompts) {
      const messages = [{ role: 'user' as const, content }];
      const whole = await client.chat.completions.create({ model: MODEL, messages });
      const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const call = lastCall();
      expect({ task, method: call.method, callTask: (call.call as TaskCall).task }).toEqual({ task, method: 'stream', callTask: task });
      expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
      expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && chunk.model === MODEL && chunk.id === `chatcmpl-${call.call.requestId}`)).toBe(true);
      // Joining the deltas gives exactly the non-streamed text.
      expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe(whole.choices[0].message.content);
      // Each expert's partial in its own chunk, before the answer's text, with an empty delta.
      const partials = chunks.filter((chunk) => (chunk as { rsmoe?: { expert?: string } }).rsmoe?.expert !== undefined);
      expect(partials.map((chunk) => chunk.choices[0].delta)).toEqual([{}]);
      expect((partials[0] as unknown as { rsmoe: unknown }).rsmoe).toMatchObject({ expert: 'theme', partial: { expertId: 'theme', status: 'ok', text: 'a residential area.' } });
      expect(chunks.indexOf(partials[0])).toBe(1);
      expect(chunks.at(-1)).toMatchObject({ choices: [{ delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 }, rsmoe: { task } });
    }
    // The client stops at [DONE]; the raw stream shows it is the last event.
    const raw = await fetch(`${test.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png), textPart('[VG] the runway')] }], stream: true }),
    });
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await raw.text()).split('\n\n').filter((event) => event !== '');
    expect(events.at(-1)).toBe('data: [DONE]');
    // role, one partial, the text, the finish: then [DONE].
    expect(events).toHaveLength(5);
  });

  it('a failure after the stream opened ends it with an error event the client throws', async () => {
    router.streamBehaviour = async (call, onPartial) => {
      onPartial(cannedResult(call.requestId).experts[0]);
      throw new RouterCallError(GrpcStatus.UNAVAILABLE, 'the router went away');
    };
    try {
      const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png)] }], stream: true });
      const seen: unknown[] = [];
      const error = await (async () => {
        for await (const chunk of stream) seen.push(chunk);
      })().then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(seen).toHaveLength(2);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('router_unavailable');
    } finally {
      router.streamBehaviour = undefined;
    }
  });

  it('refuses what it cannot serve, with the gateway’s status and code', async () => {
    const user = (content: ChatCompletionContentPart[]) => [{ role: 'user' as const, content }];
    expect(await refusal(client.chat.completions.create({ model: MODEL, messages: user([imagePart(png)]), n: 2 }))).toEqual({ status: 400, code: 'n_not_supported' });
    expect(await refusal(client.chat.completions.create({ model: MODEL, messages: user([{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }]) }))).toEqual({
      status: 400,
      code: 'image_url_not_allowed',
    });
    const unknownModel = client.chat.completions.create({ model: 'gpt-4o', messages: user([imagePart(png)]) });
    expect(await refusal(unknownModel)).toEqual({ status: 404, code: 'model_not_found' });
    expect(await refusal(client.chat.completions.create({ model: MODEL, messages: [{ role: 'tool', content: 'x', tool_call_id: '1' }] }))).toEqual({ status: 400, code: 'invalid_field' });
    // The intake's own checks, unchanged: no image, a question over the limit.
    expect(await refusal(client.chat.completions.create({ model: MODEL, messages: user([textPart('Is there a road?')]) }))).toEqual({ status: 400, code: 'missing_image' });
    expect(await refusal(client.chat.completions.create({ model: MODEL, messages: user([imagePart(png), textPart('q'.repeat(51))]) }))).toEqual({ status: 422, code: 'question_too_long' });
    // A streamed request refused before streaming is a plain JSON error too.
    expect(await refusal(client.chat.completions.create({ model: MODEL, messages: user([imagePart(png)]), n: 2, stream: true }))).toEqual({ status: 400, code: 'n_not_supported' });
  });

  it('refuses malformed chat requests and unusable images with a clear 4xx, before anything reaches the router', async () => {
    const gif = `data:image/gif;base64,${(await images.gif()).toString('base64')}`;
    // Over MAX_IMAGE_BYTES (64 KiB here) once decoded; refused on its size, before any decoding.
    const big = dataUrl(Buffer.concat([images.corruptPng(), randomBytes(70 * 1024)]));
    const tooManyPixels = dataUrl(await images.png(200, 100));
    const user = (content: unknown) => ({ model: MODEL, messages: [{ role: 'user', content }] });
    const cases: Array<[string, unknown, number, string]> = [
      ['a body that is a list', [], 400, 'bad_request'],
      ['an unknown field', { ...user([imagePart(png)]), functions: [] }, 400, 'unknown_field'],
      ['no messages', { model: MODEL, messages: [] }, 400, 'missing_field'],
      ['messages not a list', { model: MODEL, messages: 'hello' }, 400, 'missing_field'],
      ['a message that is not an object', { model: MODEL, messages: ['hello'] }, 400, 'invalid_field'],
      ['a message without a role', { model: MODEL, messages: [{ content: 'hello' }] }, 400, 'invalid_field'],
      ['an unknown role', { model: MODEL, messages: [{ role: 'developer', content: 'hello' }] }, 400, 'invalid_field'],
      ['no user message', { model: MODEL, messages: [{ role: 'system', content: 'be brief' }] }, 400, 'missing_field'],
      ['content that is neither text nor parts', user(42), 400, 'invalid_field'],
      ['an unknown part type', user([{ type: 'input_audio', input_audio: { data: '', format: 'wav' } }]), 400, 'invalid_field'],
      ['an image part without a url', user([{ type: 'image_url', image_url: {} }]), 400, 'missing_image'],
      ['stream that is not a boolean', { ...user([imagePart(png)]), stream: 'yes' }, 400, 'invalid_field'],
      ['n above 1', { ...user([imagePart(png)]), n: 3 }, 400, 'n_not_supported'],
      ['a GIF', user([{ type: 'image_url', image_url: { url: gif } }]), 415, 'unsupported_media_type'],
      ['bytes that are no image', user([{ type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8gd29ybGQ=' } }]), 415, 'unsupported_media_type'],
      ['an image over MAX_IMAGE_BYTES', user([{ type: 'image_url', image_url: { url: big } }]), 413, 'payload_too_large'],
      ['a body over MAX_JSON_BODY_BYTES', user([textPart('x'.repeat(1_100_000))]), 413, 'payload_too_large'],
      ['an image over MAX_IMAGE_PIXELS', user([{ type: 'image_url', image_url: { url: tooManyPixels } }]), 422, 'too_many_pixels'],
      ['two images for a one-image task', user([imagePart(png), imagePart(png), textPart('[VG] the runway')]), 400, 'invalid_field'],
      ['[REF] without its box', user([imagePart(png), textPart('[REF] the tank')]), 400, 'missing_field'],
    ];
    const before = router.calls.length;
    for (const [what, body, status, code] of cases) {
      for (const stream of [false, true]) {
        const payload = typeof body === 'object' && body !== null && !Array.isArray(body) && !('stream' in body) ? { ...body, stream } : body;
        const response = await fetch(`${test.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
        const answer = (await response.json()) as { error?: { code: string; message: string } };
        expect({ what, stream, status: response.status, code: answer.error?.code }).toEqual({ what, stream, status, code });
        expect(answer.error?.message.length).toBeGreaterThan(10);
      }
    }
    expect(router.calls.length).toBe(before);
  });

  it('a streaming client that goes away before the answer cancels the router call', async () => {
    let aborted!: () => void;
    const cancelled = new Promise<void>((resolve) => (aborted = resolve));
    router.behaviour = (call) =>
      new Promise((_resolve, reject) => {
        call.signal?.addEventListener('abort', () => {
          aborted();
          reject(new Error('cancelled'));
        });
      });
    const before = router.calls.length;
    const abort = new AbortController();
    const request = client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png)] }], stream: true }, { signal: abort.signal });
    // Aborted once the router holds the call.
    while (router.calls.length === before) await new Promise((resolve) => setTimeout(resolve, 10));
    abort.abort();
    await expect(request).rejects.toThrow();
    await cancelled;
  });

  it('a client that vanishes mid-stream cancels the router call and leaves no image, binding or result behind', async () => {
    const keys = createRedisKeys(test.config.KEY_PREFIX);
    // Bytes no other test stored: this request is the first to store them.
    const unique = await images.noisyPng(24, 24);
    const sha256 = createHash('sha256').update(unique).digest('hex');
    let aborted!: () => void;
    const cancelled = new Promise<void>((resolve) => (aborted = resolve));
    router.streamBehaviour = (call, onPartial) => {
      onPartial(cannedResult(call.requestId).experts[0]);
      return new Promise((_resolve, reject) =>
        call.signal?.addEventListener('abort', () => {
          aborted();
          reject(new RouterCallError(GrpcStatus.CANCELLED, 'cancelled'));
        }),
      );
    };
    try {
      const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(unique)] }], stream: true });
      const requestId = lastCall().call.requestId;
      expect(await test.redis.exists(keys.blobKey(sha256), keys.requestImagesKey(requestId))).toBe(2);
      for await (const chunk of stream) {
        // The first partial arrived: the client goes away (breaking out of the loop aborts its request).
        if ((chunk as { rsmoe?: { expert?: string } }).rsmoe?.expert) break;
      }
      await cancelled;
      await expect.poll(() => test.redis.exists(keys.blobKey(sha256), keys.requestImagesKey(requestId), keys.resultKey(requestId))).toBe(0);
    } finally {
      router.streamBehaviour = undefined;
    }
  });

  it('a cancelled request keeps an image that another running request uses', async () => {
    const keys = createRedisKeys(test.config.KEY_PREFIX);
    const shared = await images.noisyPng(24, 24);
    const sha256 = createHash('sha256').update(shared).digest('hex');
    const holds: Array<() => void> = [];
    router.streamBehaviour = (call) =>
      new Promise((resolve, reject) => {
        holds.push(() => resolve(cannedResult(call.requestId)));
        call.signal?.addEventListener('abort', () => reject(new RouterCallError(GrpcStatus.CANCELLED, 'cancelled')));
      });
    try {
      const abort = new AbortController();
      const messages = [{ role: 'user' as const, content: [imagePart(shared)] }];
      // The first request stores the image; the second, with the same bytes, runs on.
      const first = client.chat.completions.create({ model: MODEL, messages, stream: true }, { signal: abort.signal });
      await expect.poll(() => holds.length).toBe(1);
      const second = client.chat.completions.create({ model: MODEL, messages, stream: true });
      await expect.poll(() => holds.length).toBe(2);
      abort.abort();
      await expect(first).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await test.redis.exists(keys.blobKey(sha256))).toBe(1);
      holds[1]();
      const chunks = [];
      for await (const chunk of await second) chunks.push(chunk);
      expect(chunks.at(-1)?.choices[0].finish_reason).toBe('stop');
    } finally {
      router.streamBehaviour = undefined;
    }
  });

  it('reads the pack name from ListExperts once, then from its cache', async () => {
    const before = router.listExpertsCalls;
    await client.models.list();
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png)] }] });
    expect(router.listExpertsCalls).toBe(before);
  });
});

describe('gateway: OpenAI-compatible chat completions with API keys', () => {
  let test: TestGateway;
  let png: Buffer;

  beforeAll(async () => {
    test = await startTestGateway({ AUTH_MODE: 'required' });
    png = await images.png(40, 20);
  });

  afterAll(() => test?.close());

  const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${test.base}/v1`, maxRetries: 0 });
  const ask = (apiKey: string, text: string) => client(apiKey).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [imagePart(png), textPart(text)] }] });

  it('the API key goes as the client’s apiKey; the task the message asks for is checked against the key', async () => {
    const all = await createTestApiKey(test.redis, test.config.KEY_PREFIX, { name: 'all-tasks' });
    const captionsOnly = await createTestApiKey(test.redis, test.config.KEY_PREFIX, { name: 'captions-only', tasks: ['caption', 'vqa'] });
    expect((await ask(all, '[VG] the runway')).choices[0].message.content).toBe('[25, 25, 75, 50]');
    expect((await ask(captionsOnly, 'Is there a road?')).choices[0].message.content).toBe('yes');
    expect(await refusal(ask(captionsOnly, '[VG] the runway'))).toEqual({ status: 403, code: 'forbidden' });
    expect(await refusal(ask('rsk_not-a-key', '[CAP]'))).toEqual({ status: 401, code: 'unauthenticated' });
  });
});
