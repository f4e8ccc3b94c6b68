import 'reflect-metadata';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskCall } from '../adapters/router.port';
import { RouterCallError } from '../errors/router-status.mapping';
import { cannedTaskResult, createTestApiKey, images, multipartForm, startTestGateway, type FakeRouter, type TestGateway } from '../testing/gateway-test-kit';

/** `Idempotency-Key` on the in-process gateway (real HTTP and Redis, a fake router), with API keys on and off. */
describe('Idempotency-Key', () => {
  let open: TestGateway;
  let keyed: TestGateway;
  let png: Buffer;
  let other: Buffer;

  beforeAll(async () => {
    open = await startTestGateway();
    keyed = await startTestGateway({ AUTH_MODE: 'required' });
    png = await images.png(20, 20);
    other = await images.png(21, 20);
  });

  afterAll(async () => {
    await open?.close();
    await keyed?.close();
  });

  beforeEach(() => {
    open.router.behaviour = undefined;
    keyed.router.behaviour = undefined;
  });

  const performs = (router: FakeRouter) => router.calls.filter((call) => call.method === 'perform').length;
  const classify = (gateway: TestGateway, image: Buffer, headers: Record<string, string>) =>
    fetch(`${gateway.base}/v1/classify`, { method: 'POST', headers, body: multipartForm({ image }) });

  it('gives the first answer again for the same key and request (a new multipart boundary too), runs once', async () => {
    const before = performs(open.router);
    const first = await classify(open, png, { 'Idempotency-Key': 'order-1' });
    const firstBody = (await first.json()) as { requestId: string };
    const again = await classify(open, png, { 'Idempotency-Key': 'order-1' });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { requestId: string }).requestId).toBe(firstBody.requestId);
    expect(performs(open.router) - before).toBe(1);
    // Without API keys another request with the same key is not refused: it runs.
    expect((await classify(open, other, { 'Idempotency-Key': 'order-1' })).headers.get('idempotent-replayed')).toBeNull();
    expect(performs(open.router) - before).toBe(2);
  });

  it('with API keys: another request under the key is 422, another API key never sees the answer, a running one is 409', async () => {
    const alice = await createTestApiKey(keyed.redis, keyed.config.KEY_PREFIX, { name: 'alice' });
    const bob = await createTestApiKey(keyed.redis, keyed.config.KEY_PREFIX, { name: 'bob' });
    const as = (key: string) => ({ Authorization: `Bearer ${key}`, 'Idempotency-Key': 'job-7' });
    const first = (await (await classify(keyed, png, as(alice))).json()) as { requestId: string };
    const reused = await classify(keyed, other, as(alice));
    expect(reused.status).toBe(422);
    expect(((await reused.json()) as { error: { code: string } }).error.code).toBe('idempotency_key_reused');
    const bobs = (await (await classify(keyed, png, as(bob))).json()) as { requestId: string };
    expect(bobs.requestId).not.toBe(first.requestId);

    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    keyed.router.behaviour = async (call) => {
      await gate;
      return cannedTaskResult(call as TaskCall);
    };
    const slow = classify(keyed, png, { Authorization: `Bearer ${alice}`, 'Idempotency-Key': 'job-8' });
    await expect.poll(() => keyed.router.calls.length).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const meanwhile = await classify(keyed, png, { Authorization: `Bearer ${alice}`, 'Idempotency-Key': 'job-8' });
    expect(meanwhile.status).toBe(409);
    expect(((await meanwhile.json()) as { error: { code: string } }).error.code).toBe('idempotent_request_pending');
    release();
    expect((await slow).status).toBe(200);
  });

  it('forgets a transient failure, so the retry runs; refuses a malformed key', async () => {
    open.router.behaviour = async () => {
      throw new RouterCallError(GrpcStatus.UNAVAILABLE, 'down');
    };
    expect((await classify(open, png, { 'Idempotency-Key': 'retry-me' })).status).toBe(503);
    open.router.behaviour = undefined;
    const retried = await classify(open, png, { 'Idempotency-Key': 'retry-me' });
    expect(retried.status).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect((await classify(open, png, { 'Idempotency-Key': 'has space' })).status).toBe(400);
  });
});
