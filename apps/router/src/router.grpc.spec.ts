import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REASON_METADATA_KEY, REFUSAL_REASONS, loadPackManifest, loadRouterPackage, type AggregateJobData, type ExpertJobData, type ExpertOutputJson, type InferenceResultJson, type ProtoRouterClient } from '@rsmoe/contracts';
import { createLogger } from '@rsmoe/observability';
import { InstructionRouter } from '@rsmoe/routing';
import type { AdmissionDecision } from './expert-capacity.service';
import { RETRY_AFTER_METADATA, createRouterHandlers } from './router.grpc';
import { RouterService, type ExpertReport } from './router.service';

const manifest = loadPackManifest(`${__dirname}/../../../models/fixtures/tiny-pack`);
const image = { sha256: 'a'.repeat(64), byteLength: 10, mediaType: 'image/png' };
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** An ok output of `expertId`, as an expert reports it. */
const okOutput = (expertId: string, text: string): ExpertOutputJson => ({
  expertId,
  prompt: 'p',
  text,
  status: 'ok',
  promptTokens: 3,
  generatedTokens: 2,
  finishReason: 'eos',
  timings: { queueMs: 1, preprocessMs: 1, visionEncodeMs: 1, prefillMs: 1, decodeMs: 1, timeToFirstTokenMs: 2, computeMs: 4 },
  model: 'tiny-llava',
  featuresCached: false,
});

describe('router gRPC edge', () => {
  let server: grpc.Server;
  let client: ProtoRouterClient;
  let decision: AdmissionDecision = { kind: 'admit', live: [], unavailable: [] };
  // What each request dispatched: its jobs, and the deadline job's data (armed at dispatch, the grace being long).
  const dispatched: { parent: AggregateJobData; children: readonly ExpertJobData[] }[] = [];
  const pendingJobs = new Map<string, readonly ExpertJobData[]>();
  const released: string[] = [];
  const withdrawn = new Map<string, string[]>();

  /** Once the request's jobs are dispatched, reports an ok output of each, one tick apart; the result comes from the router's own fusing. */
  function reportEachDispatched(requestId: string, onReport: ((report: ExpertReport) => void) | undefined): Promise<InferenceResultJson> {
    const step = (): void => {
      const children = pendingJobs.get(requestId);
      if (!children) return void setTimeout(step, 5);
      children.forEach((child, index) => setTimeout(() => onReport?.({ kind: 'partial', output: okOutput(child.expertId, `yes ${child.expertId}`) }), 10 * (index + 1)));
    };
    step();
    return new Promise<InferenceResultJson>(() => undefined);
  }

  beforeAll(async () => {
    const service = new RouterService({
      manifest,
      router: new InstructionRouter(manifest),
      dispatcher: {
        dispatch: async (children) => void pendingJobs.set(children[0]?.requestId ?? '', children),
        armDeadline: async (parent) => void dispatched.push({ parent, children: pendingJobs.get(parent.requestId) ?? [] }),
        withdraw: async (requestId, expertIds) => {
          withdrawn.set(requestId, [...expertIds]);
          return 0;
        },
      },
      completions: {
        channel: 'rsmoe:inbox:test',
        listen: (requestId, _timeoutMs, onReport) => ({
          result: requestId.startsWith('stream')
            ? reportEachDispatched(requestId, onReport)
            : requestId.startsWith('hang')
            ? new Promise<InferenceResultJson>(() => undefined)
            : Promise.resolve({ requestId, task: 'caption', caption: 'A farmland.', experts: [], routed: [], degraded: false, missingExperts: [], correlationId: 'x1', timings: { queueMs: 0, computeMs: 0, totalMs: 1 }, packName: 'p', packVersion: '1', fusionStrategy: 'ordered-dedup' } as InferenceResultJson),
          cancel: () => void released.push(requestId),
        }),
      },
      images: { has: async () => true, get: async () => undefined },
      results: { get: async () => undefined, store: async () => true },
      maxImages: 4,
      deadlines: { defaultMs: 10_000, maxMs: 60_000, reserveFraction: 0.1, reserveMinMs: 50, reserveMaxMs: 1_000, deadlineJobGraceMs: 60_000 },
      capacity: { admit: (ids) => (decision.kind === 'admit' ? { kind: 'admit', live: [...ids], unavailable: [] } : decision) },
    });
    server = new grpc.Server();
    const liveness = (expertId: string) => (expertId === 'object' ? { liveWorkers: 0, waitingJobs: 3 } : expertId === 'theme' ? { liveWorkers: 2, waitingJobs: 0 } : undefined);
    server.addService(loadRouterPackage().rsmoe.v1.Router.service, createRouterHandlers(service, createLogger('router-test', { level: 'error' }), undefined, liveness));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    client = new (loadRouterPackage().rsmoe.v1.Router)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  const caption = (requestId: string, metadata = new grpc.Metadata(), correlationId = '') =>
    new Promise<{ error: grpc.ServiceError | null; value?: unknown }>((resolve) =>
      client.Caption({ requestId, images: [image], correlationId }, metadata, (error, value) => resolve({ error, value })),
    );

  it('takes the correlation id from the message and the traceparent from the metadata into every job, and answers with the correlation id', async () => {
    decision = { kind: 'admit', live: [], unavailable: [] };
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', TRACEPARENT);
    const { error, value } = await caption('g1', metadata, 'x1');
    expect(error).toBeNull();
    expect(value).toMatchObject({ requestId: 'g1', correlationId: 'x1' });
    const job = dispatched.find((entry) => entry.parent.requestId === 'g1');
    expect(job?.parent).toMatchObject({ correlationId: 'x1', traceparent: TRACEPARENT });
    expect(job?.children.every((child) => child.traceparent === TRACEPARENT && child.correlationId === 'x1')).toBe(true);
  });

  it('ignores a malformed traceparent (the trace restarts, the request goes on)', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', 'garbage');
    expect((await caption('g2', metadata)).error).toBeNull();
    expect(dispatched.find((entry) => entry.parent.requestId === 'g2')?.parent).not.toHaveProperty('traceparent');
  });

  it('maps an overloaded expert to RESOURCE_EXHAUSTED with retry-after-ms in the trailing metadata', async () => {
    decision = { kind: 'overloaded', expertId: 'object', reason: 'queue_full', retryAfterMs: 4_200, message: 'expert object has 64 interactive jobs waiting (limit 64)' };
    const { error } = await caption('g3');
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toContain('64 interactive jobs');
    expect(error?.metadata.get(RETRY_AFTER_METADATA)).toEqual(['4200']);
  });

  it('maps no live expert to UNAVAILABLE naming the experts down', async () => {
    decision = { kind: 'unavailable', down: ['theme', 'object', 'relation'] };
    const { error } = await caption('g4');
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.details).toMatch(/theme, object, relation/);
    expect(error?.metadata.get(RETRY_AFTER_METADATA)).toEqual([]);
    expect(error?.metadata.get(REASON_METADATA_KEY)).toEqual([REFUSAL_REASONS.expertsUnavailable]);
  });

  it('releases the wait when the client cancels the call or its gRPC deadline passes', async () => {
    decision = { kind: 'admit', live: [], unavailable: [] };
    const call = client.Caption({ requestId: 'hang1', images: [image] }, () => undefined);
    await expect.poll(() => dispatched.some((entry) => entry.parent.requestId === 'hang1')).toBe(true);
    call.cancel();
    await expect.poll(() => released.includes('hang1')).toBe(true);
    const late = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.Caption({ requestId: 'hang2', images: [image] }, { deadline: Date.now() + 300 }, (error) => resolve(error)),
    );
    expect(late?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await expect.poll(() => released.includes('hang2')).toBe(true);
  });

  /** Every event of an InferStream call, and how it ended. */
  function inferStream(request: object): { call: grpc.ClientReadableStream<unknown>; ended: Promise<{ events: Array<Record<string, unknown>>; error: grpc.ServiceError | null }> } {
    const call = client.InferStream(request);
    const events: Array<Record<string, unknown>> = [];
    const ended = new Promise<{ events: Array<Record<string, unknown>>; error: grpc.ServiceError | null }>((resolve) => {
      call.on('data', (event: Record<string, unknown>) => events.push(event));
      call.on('error', (error: grpc.ServiceError) => resolve({ events, error }));
      call.on('end', () => resolve({ events, error: null }));
    });
    return { call, ended };
  }

  it('InferStream streams any task: one partial per expert as it reports, then the fused result, last', async () => {
    decision = { kind: 'admit', live: [], unavailable: [] };
    const { events, error } = await inferStream({ answer: { requestId: 'stream1', images: [image], question: 'what is in the image ?' } }).ended;
    expect(error).toBeNull();
    const children = pendingJobs.get('stream1') ?? [];
    expect(children.length).toBeGreaterThan(0);
    expect(events.map((event) => event.event)).toEqual([...children.map(() => 'partial'), 'result']);
    expect(events.slice(0, -1).map((event) => (event.partial as { expertId: string }).expertId)).toEqual(children.map((child) => child.expertId));
    expect(events.at(-1)?.result).toMatchObject({ requestId: 'stream1', task: 'VQA', question: 'what is in the image ?', answer: 'yes' });
    // The caption's request message, in the oneof, streams the same way.
    const caption = await inferStream({ caption: { requestId: 'stream2', images: [image] } }).ended;
    expect(caption.events.at(-1)?.result).toMatchObject({ requestId: 'stream2', task: 'CAPTION' });
  });

  it('InferStream reads a task message as Perform does, and refuses an empty oneof', async () => {
    // tiny-pack serves no grounding: the refusal shows the task message reached the routing.
    const grounding = await inferStream({ task: { requestId: 'stream3', images: [image], task: 'GROUNDING', query: 'the runway' } }).ended;
    expect(grounding.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(grounding.error?.metadata.get(REASON_METADATA_KEY)).toEqual([REFUSAL_REASONS.taskNotSupported]);
    const empty = await inferStream({}).ended;
    expect(empty.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(empty.error?.details).toMatch(/one of caption, answer or task/);
  });

  it('a cancelled InferStream releases the wait and withdraws the jobs it dispatched', async () => {
    decision = { kind: 'admit', live: [], unavailable: [] };
    const { call, ended } = inferStream({ caption: { requestId: 'hang3', images: [image] } });
    await expect.poll(() => pendingJobs.has('hang3')).toBe(true);
    call.cancel();
    expect((await ended).error?.code).toBe(grpc.status.CANCELLED);
    await expect.poll(() => released.includes('hang3')).toBe(true);
    await expect.poll(() => withdrawn.get('hang3')).toEqual(pendingJobs.get('hang3')?.map((child) => child.expertId));
  });

  it('lists each expert with its live workers and backlog when the last poll knows them', async () => {
    const response = await listExperts();
    const byId = new Map(response.experts.map((expert) => [expert.id, expert]));
    expect(byId.get('theme')).toMatchObject({ liveWorkers: 2, waitingJobs: 0 });
    expect(byId.get('object')).toMatchObject({ liveWorkers: 0, waitingJobs: 3 });
    // Unknown (no poll yet): the fields are absent, not zero.
    expect(byId.get('relation')?.liveWorkers).toBeUndefined();
  });

  function listExperts() {
    return new Promise<{ experts: { id: string; liveWorkers?: number; waitingJobs?: number }[] }>((resolve, reject) =>
      client.ListExperts({}, (error, value) => (error ? reject(error) : resolve(value as never))),
    );
  }
});
