import 'reflect-metadata';
import * as grpc from '@grpc/grpc-js';
import {
  REASON_METADATA_KEY,
  REFUSAL_REASONS,
  ROUTER_SERVICE_NAME,
  loadHealthPackage,
  loadRouterPackage,
  toProtoResult,
  type ProtoAnswerRequest__Output,
  type ProtoCaptionRequest__Output,
  type ProtoHealthCheckRequest__Output,
} from '@rsmoe/contracts';
import { createLogger } from '@rsmoe/observability';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RouterCallError } from '../errors/router-status.mapping';
import { createGatewayApp } from '../gateway.app';
import { CANNED_EXPERTS, cannedResult, images, testConfig } from '../testing/gateway-test-kit';
import { RouterClientAdapter } from './router-client.adapter';

interface Received {
  method: string;
  request: ProtoCaptionRequest__Output | ProtoAnswerRequest__Output;
  requestIdMetadata: string[];
  correlationIdMetadata: string[];
  traceparentMetadata: string[];
  /** The call's deadline as the server saw it (transmitted as grpc-timeout). */
  deadline: number;
}

/** A real grpc-js server implementing the router's Caption/Answer/ListExperts and grpc.health.v1. */
describe('RouterClientAdapter against a real grpc-js server', () => {
  const received: Received[] = [];
  let server: grpc.Server;
  let address: string;
  let adapter: RouterClientAdapter;
  let servingStatus: 'SERVING' | 'NOT_SERVING' = 'SERVING';
  /** When set, Caption never answers (the client deadline must end it). */
  let hang = false;

  const deadlineOf = (call: grpc.ServerUnaryCall<unknown, unknown>): number => {
    const deadline = call.getDeadline();
    return deadline instanceof Date ? deadline.getTime() : Number(deadline);
  };

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(loadRouterPackage().rsmoe.v1.Router.service, {
      Caption: (call: grpc.ServerUnaryCall<ProtoCaptionRequest__Output, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        received.push({ method: 'Caption', request: call.request, requestIdMetadata: call.metadata.get('x-request-id').map(String), correlationIdMetadata: call.metadata.get('x-correlation-id').map(String), traceparentMetadata: call.metadata.get('traceparent').map(String), deadline: deadlineOf(call) });
        if (hang) return;
        if (call.request.requestId === 'please-fail') {
          const trailers = new grpc.Metadata();
          trailers.set('retry-after-ms', '1500');
          callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'queue full', metadata: trailers });
          return;
        }
        if (call.request.requestId === 'experts-down') {
          const trailers = new grpc.Metadata();
          trailers.set(REASON_METADATA_KEY, REFUSAL_REASONS.expertsUnavailable);
          callback({ code: grpc.status.UNAVAILABLE, details: 'no live worker for caption expert theme (queue expert.theme)', metadata: trailers });
          return;
        }
        callback(null, toProtoResult({ ...cannedResult(call.request.requestId), ...(call.request.correlationId ? { correlationId: call.request.correlationId } : {}) }));
      },
      Answer: (call: grpc.ServerUnaryCall<ProtoAnswerRequest__Output, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        received.push({ method: 'Answer', request: call.request, requestIdMetadata: call.metadata.get('x-request-id').map(String), correlationIdMetadata: call.metadata.get('x-correlation-id').map(String), traceparentMetadata: call.metadata.get('traceparent').map(String), deadline: deadlineOf(call) });
        callback(null, toProtoResult(cannedResult(call.request.requestId, 'vqa', call.request.question)));
      },
      CaptionStream: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
      ListExperts: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback(
          null,
          call.metadata.get('x-request-id')[0] === 'with-liveness' ? { ...CANNED_EXPERTS, experts: [{ ...CANNED_EXPERTS.experts[0], liveWorkers: 0, waitingJobs: 3 }] } : CANNED_EXPERTS,
        ),
    });
    server.addService(loadHealthPackage().grpc.health.v1.Health.service, {
      Check: (call: grpc.ServerUnaryCall<ProtoHealthCheckRequest__Output, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        if (call.request.service !== ROUTER_SERVICE_NAME && call.request.service !== '') {
          callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
          return;
        }
        callback(null, { status: servingStatus });
      },
      Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    address = `127.0.0.1:${port}`;
    adapter = new RouterClientAdapter(address);
  });

  afterAll(async () => {
    adapter?.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  beforeEach(() => {
    received.length = 0;
    hang = false;
    servingStatus = 'SERVING';
  });

  const image = { sha256: 'a'.repeat(64), byteLength: 1234, mediaType: 'image/png' };

  it('Caption: sends the request, the deadline (message and gRPC) and x-request-id; converts the result', async () => {
    const deadlineUnixMs = Date.now() + 4000;
    const result = await adapter.caption({ requestId: 'grpc-req-1', images: [image], params: { maxNewTokens: 7, topK: 0 }, deadlineUnixMs });
    expect(result).toEqual(cannedResult('grpc-req-1'));
    const [{ method, request, requestIdMetadata, deadline }] = received;
    expect(method).toBe('Caption');
    expect(requestIdMetadata).toEqual(['grpc-req-1']);
    expect(request.requestId).toBe('grpc-req-1');
    expect(request.images).toEqual([{ sha256: image.sha256, byteLength: '1234', mediaType: 'image/png' }]);
    expect(request.deadlineUnixMs).toBe(String(deadlineUnixMs));
    expect(request.params).toMatchObject({ maxNewTokens: 7, topK: 0 });
    // grpc-timeout is relative and rounded: the server's deadline lands within a few ms of ours.
    expect(Math.abs(deadline - deadlineUnixMs)).toBeLessThan(250);
  });

  it('Answer: carries the question', async () => {
    const result = await adapter.answer({ requestId: 'grpc-req-2', images: [image], params: {}, deadlineUnixMs: Date.now() + 4000, question: 'Is there water?' });
    expect(result).toMatchObject({ task: 'vqa', question: 'Is there water?', answer: 'yes' });
    expect(received[0]).toMatchObject({ method: 'Answer', requestIdMetadata: ['grpc-req-2'] });
    expect((received[0].request as ProtoAnswerRequest__Output).question).toBe('Is there water?');
  });

  it('ListExperts and the health check', async () => {
    expect(await adapter.listExperts({ requestId: 'grpc-req-3', deadlineUnixMs: Date.now() + 2000 })).toEqual(CANNED_EXPERTS);
    expect((await adapter.listExperts({ requestId: 'with-liveness', deadlineUnixMs: Date.now() + 2000 })).experts).toEqual([{ ...CANNED_EXPERTS.experts[0], liveWorkers: 0, waitingJobs: 3 }]);
    expect(await adapter.checkHealth(Date.now() + 1000)).toEqual({ serving: true, status: 'SERVING' });
    servingStatus = 'NOT_SERVING';
    expect(await adapter.checkHealth(Date.now() + 1000)).toEqual({ serving: false, status: 'NOT_SERVING' });
  });

  it('turns gRPC failures into RouterCallError: status from the server, DEADLINE_EXCEEDED, UNAVAILABLE, CANCELLED', async () => {
    await expect(adapter.caption({ requestId: 'please-fail', images: [image], params: {}, deadlineUnixMs: Date.now() + 2000 })).rejects.toMatchObject({
      name: 'RouterCallError',
      grpcCode: grpc.status.RESOURCE_EXHAUSTED,
      details: 'queue full',
      retryAfterMs: 1500,
    });
    await expect(adapter.caption({ requestId: 'experts-down', images: [image], params: {}, deadlineUnixMs: Date.now() + 2000 })).rejects.toMatchObject({
      grpcCode: grpc.status.UNAVAILABLE,
      reason: REFUSAL_REASONS.expertsUnavailable,
    });

    hang = true;
    const started = Date.now();
    const late = await adapter.caption({ requestId: 'grpc-late', images: [image], params: {}, deadlineUnixMs: Date.now() + 150 }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(RouterCallError);
    expect((late as RouterCallError).grpcCode).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(2000);

    const abort = new AbortController();
    const pending = adapter.caption({ requestId: 'grpc-gone', images: [image], params: {}, deadlineUnixMs: Date.now() + 5000, signal: abort.signal });
    setTimeout(() => abort.abort(), 50);
    await expect(pending).rejects.toMatchObject({ grpcCode: grpc.status.CANCELLED });

    const nowhere = new RouterClientAdapter('127.0.0.1:1');
    try {
      await expect(nowhere.caption({ requestId: 'grpc-nowhere', images: [image], params: {}, deadlineUnixMs: Date.now() + 2000 })).rejects.toMatchObject({
        grpcCode: grpc.status.UNAVAILABLE,
        reason: undefined,
      });
      expect(await nowhere.checkHealth(Date.now() + 500)).toMatchObject({ serving: false, status: expect.stringMatching(/^UNAVAILABLE/) });
    } finally {
      nowhere.close();
    }
  });

  it('end to end through the HTTP gateway: multipart PNG → real gRPC → 200, request id in metadata', async () => {
    const config = testConfig({ ROUTER_URL: address });
    const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
    const gateway = await createGatewayApp(config, { redis, logger: createLogger('gateway', { level: 'error', write: () => {} }) });
    try {
      const base = await gateway.listen();
      const body = new FormData();
      body.append('image', new Blob([new Uint8Array(await images.png())]), 'scene.png');
      body.append('timeoutMs', '3000');
      const response = await fetch(`${base}/v1/captions`, { method: 'POST', headers: { 'X-Request-Id': 'e2e-1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, body });
      expect(response.status).toBe(200);
      const meshId = response.headers.get('x-request-id')!;
      expect(meshId).toMatch(/^[0-9a-f]{32}$/);
      expect(await response.json()).toEqual({ ...cannedResult(meshId), correlationId: 'e2e-1' });
      expect(received[0].requestIdMetadata).toEqual([meshId]);
      expect(received[0].correlationIdMetadata).toEqual(['e2e-1']);
      expect(received[0].traceparentMetadata).toEqual([response.headers.get('traceparent')]);
      expect(received[0].traceparentMetadata[0]).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
      expect(received[0].request).toMatchObject({ requestId: meshId, correlationId: 'e2e-1' });
      expect(Number(received[0].request.deadlineUnixMs) - Date.now()).toBeLessThanOrEqual(3000);
      const ready = await fetch(`${base}/v2/health/ready`);
      expect(ready.status).toBe(200);
      const experts = await fetch(`${base}/v1/experts`);
      expect(await experts.json()).toEqual(CANNED_EXPERTS);
    } finally {
      await gateway.close();
      const keys = await redis.keys(`${config.KEY_PREFIX}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });
});
