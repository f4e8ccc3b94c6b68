import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captionResult, expertOutput, SHA } from '../test-support/fixtures';
import {
  fromProtoExpertOutput,
  findProtoRoot,
  fromProtoResult,
  generationParamsFromProto,
  HEALTH_PROTO_PATH,
  IMAGES_PER_REQUEST_LIMIT,
  imageRefFromProto,
  imageRefsFromProto,
  loadHealthPackage,
  loadRouterPackage,
  PROTO_LOADER_OPTIONS,
  PROTO_ROOT,
  ROUTER_PROTO_PATH,
  toProtoExpertOutput,
  toProtoResult,
  type ProtoCaptionRequest__Output,
  type ProtoExpertOutput__Output,
  type ProtoInferenceEvent__Output,
  type ProtoInferenceResult__Output,
  type ProtoRouterClient,
  type ProtoRouterHandlers,
} from './index';

describe('proto loading', () => {
  it('exposes absolute proto paths under PROTO_ROOT and the loader options', () => {
    expect(ROUTER_PROTO_PATH.startsWith(PROTO_ROOT)).toBe(true);
    expect(HEALTH_PROTO_PATH.endsWith('grpc/health/v1/health.proto')).toBe(true);
    expect(PROTO_LOADER_OPTIONS).toMatchObject({ keepCase: false, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_ROOT] });
  });

  it('finds the protos folder from deeper folders and fails clearly outside the repository', () => {
    expect(findProtoRoot(resolve(PROTO_ROOT, '../apps/router/dist/libs/contracts/src'))).toBe(PROTO_ROOT);
    expect(() => findProtoRoot('/')).toThrow(/no protos\/rsmoe\/v1\/router.proto above \//);
  });

  it('loads the router service with its methods and the health service', () => {
    const router = loadRouterPackage().rsmoe.v1.Router.service;
    expect(Object.keys(router).sort()).toEqual(['Answer', 'Caption', 'CaptionStream', 'InferStream', 'ListExperts', 'Perform']);
    expect(router.CaptionStream.responseStream).toBe(true);
    expect(router.InferStream.responseStream).toBe(true);
    expect(router.Caption.path).toBe('/rsmoe.v1.Router/Caption');
    const health = loadHealthPackage().grpc.health.v1.Health.service;
    expect(Object.keys(health).sort()).toEqual(['Check', 'Watch']);
  });

  it('round-trips a result through the wire format and back to the same JSON', () => {
    const caption = loadRouterPackage().rsmoe.v1.Router.service.Caption;
    const json = captionResult();
    const decoded = caption.responseDeserialize(caption.responseSerialize(toProtoResult(json))) as ProtoInferenceResult__Output;
    expect(decoded.task).toBe('CAPTION');
    expect(decoded.experts[2].status).toBe('TIMED_OUT');
    expect(fromProtoResult(decoded)).toEqual(json);
  });

  it('round-trips a question result, keeping only the vqa fields', () => {
    const answer = loadRouterPackage().rsmoe.v1.Router.service.Answer;
    const json = captionResult({
      task: 'vqa',
      caption: undefined,
      answer: 'yes',
      question: 'is there a road ?',
      questionType: 'presence',
      degraded: false,
      missingExperts: [],
      experts: [expertOutput({ expertId: 'object', text: 'yes' })],
      routed: [{ expertId: 'object', reason: 'question type presence ∈ object.questionTypes' }],
      fusionStrategy: 'priority',
    });
    const decoded = answer.responseDeserialize(answer.responseSerialize(toProtoResult(json))) as ProtoInferenceResult__Output;
    expect(decoded.caption).toBe('');
    expect(fromProtoResult(decoded)).toEqual(json);
  });

  it('tells an unset generation parameter from one set to zero or false', () => {
    const caption = loadRouterPackage().rsmoe.v1.Router.service.Caption;
    const wire = caption.requestSerialize({
      requestId: 'r1',
      images: [{ sha256: SHA, byteLength: 5, mediaType: 'image/png' }],
      params: { topK: 0, doSample: false, maxNewTokens: 7 },
      deadlineUnixMs: 1_700_000_000_000,
    });
    const request = caption.requestDeserialize(wire) as ProtoCaptionRequest__Output;
    expect(request.deadlineUnixMs).toBe('1700000000000');
    expect(request.images[0]?.byteLength).toBe('5');
    expect(generationParamsFromProto(request.params)).toEqual({ topK: 0, doSample: false, maxNewTokens: 7 });
    expect(generationParamsFromProto(null)).toEqual({});
    expect(imageRefsFromProto(request.images)).toEqual([{ sha256: SHA, byteLength: 5, mediaType: 'image/png' }]);
  });

  it('carries the images in prompt order; one image is field 2 once, as the former singular `image` was sent', () => {
    const caption = loadRouterPackage().rsmoe.v1.Router.service.Caption;
    const first = { sha256: SHA, byteLength: 5, mediaType: 'image/png' };
    const second = { sha256: 'b'.repeat(64), byteLength: 6, mediaType: 'image/jpeg' };
    const two = caption.requestDeserialize(caption.requestSerialize({ requestId: 'r2', images: [first, second] })) as ProtoCaptionRequest__Output;
    expect(imageRefsFromProto(two.images)).toEqual([first, second]);
    // A repeated message field with one element and a singular message field encode the same bytes
    // (tag 0x12 = field 2, length-delimited): an old gateway's `image` reads as a list of one.
    const one = caption.requestSerialize({ images: [first] });
    expect([one[0], one[1]]).toEqual([0x12, one.length - 2]);
  });

  it('refuses no image, too many images, and names each bad reference by position', () => {
    const ref = { sha256: SHA, byteLength: '5', mediaType: 'image/png' };
    expect(() => imageRefsFromProto([])).toThrow(/images: at least one image is required/);
    expect(() => imageRefsFromProto(null)).toThrow(/images: at least one image is required/);
    expect(() => imageRefsFromProto([ref, ref, ref], 2)).toThrow(/images: 3 images; at most 2 per request/);
    expect(() => imageRefsFromProto(Array.from({ length: IMAGES_PER_REQUEST_LIMIT + 1 }, () => ref), 1000)).toThrow(
      new RegExp(`at most ${IMAGES_PER_REQUEST_LIMIT} per request`),
    );
    expect(() => imageRefsFromProto([ref, { ...ref, sha256: 'XYZ' }])).toThrow(/images\[1\]\.sha256: must be 64 lower-case hex/);
  });

  it('rejects a malformed image reference naming the fields', () => {
    expect(() => imageRefFromProto({ sha256: 'XYZ', byteLength: '0', mediaType: 'png' })).toThrow(
      /image\.sha256: .*; image\.byteLength: .*; image\.mediaType/,
    );
    expect(() => imageRefFromProto(null)).toThrow(/image: required/);
  });

  it('rejects a result with an unspecified task or status', () => {
    const caption = loadRouterPackage().rsmoe.v1.Router.service.Caption;
    const decoded = caption.responseDeserialize(caption.responseSerialize({ requestId: 'r1' })) as ProtoInferenceResult__Output;
    expect(() => fromProtoResult(decoded)).toThrow(/task/);
    const partial = toProtoExpertOutput(expertOutput()) as ProtoExpertOutput__Output;
    expect(() => fromProtoExpertOutput({ ...partial, status: 'EXPERT_STATUS_UNSPECIFIED', timings: null })).toThrow(/status/);
  });
});

describe('a real gRPC server and client built from loadRouterPackage()', () => {
  let server: grpc.Server;
  let client: ProtoRouterClient;

  beforeAll(async () => {
    const pkg = loadRouterPackage();
    server = new grpc.Server();
    const handlers: ProtoRouterHandlers = {
      Caption: (call, callback) => callback(null, toProtoResult(captionResult({ requestId: call.request.requestId }))),
      Answer: (_call, callback) => callback({ code: grpc.status.INVALID_ARGUMENT, details: 'empty question' }),
      CaptionStream: (call) => {
        for (const partial of captionResult().experts) call.write({ partial: toProtoExpertOutput(partial) });
        call.write({ result: toProtoResult(captionResult({ requestId: call.request.requestId })) });
        call.end();
      },
      // Unused here: the router's own spec streams every task.
      InferStream: (call) => call.end(),
      ListExperts: (_call, callback) => callback(null, { experts: [], packName: 'p', packVersion: '1' }),
      // Echoes the task's result shape: a grounding's boxes, a segmentation's mask grid, a change's both.
      Perform: (call, callback) => {
        const { task, requestId, query } = call.request;
        const base = { ...captionResult({ requestId }), caption: undefined, fusionStrategy: 'task-output' };
        const grid = { width: 3, height: 2, labels: Buffer.from([0, 1, 2, 2, 1, 0]).toString('base64'), classes: ['others', 'road', 'water'] };
        const fields =
          task === 'GROUNDING'
            ? { task: 'grounding' as const, boxes: [{ x1: 10, y1: 20, x2: 30.5, y2: 40 }], query }
            : task === 'SEGMENTATION'
              ? { task: 'segmentation' as const, mask: grid, query }
              : { task: 'change' as const, caption: 'a road was built.', mask: { ...grid, classes: ['others', 'changed', 'x'] } };
        callback(null, toProtoResult({ ...base, ...fields }));
      },
    };
    server.addService(pkg.rsmoe.v1.Router.service, handlers);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
    );
    client = new pkg.rsmoe.v1.Router(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(() => {
    client?.close();
    server?.forceShutdown();
  });

  it('serves a unary Caption whose result converts back to the JSON schema', async () => {
    const result = await new Promise<ProtoInferenceResult__Output>((resolve, reject) =>
      client.Caption({ requestId: 'abc', images: [{ sha256: SHA, byteLength: 1, mediaType: 'image/png' }] }, (error, value) => (error ? reject(error) : resolve(value!))),
    );
    expect(fromProtoResult(result)).toEqual(captionResult({ requestId: 'abc' }));
  });

  it('streams partials then the result, tagged by the oneof name', async () => {
    const events: ProtoInferenceEvent__Output[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.CaptionStream({ requestId: 'xyz' });
      call.on('data', (event: ProtoInferenceEvent__Output) => events.push(event));
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    expect(events.map((e) => e.event)).toEqual(['partial', 'partial', 'partial', 'result']);
    expect(fromProtoExpertOutput(events[1].partial!).expertId).toBe('object');
    expect(fromProtoResult(events[3].result!).requestId).toBe('xyz');
  });

  it('carries the outputs of RSUniVLM tasks through Perform: boxes, the mask grid bytes, a change caption with its mask', async () => {
    const perform = (task: string, query = '') =>
      new Promise<ProtoInferenceResult__Output>((resolve, reject) =>
        client.Perform({ requestId: `p-${task}`, task: task as never, query }, (error, value) => (error ? reject(error) : resolve(value!))),
      );
    expect(fromProtoResult(await perform('GROUNDING', 'the runway'))).toMatchObject({ task: 'grounding', boxes: [{ x1: 10, y1: 20, x2: 30.5, y2: 40 }], query: 'the runway' });
    const segmentation = fromProtoResult(await perform('SEGMENTATION', 'water'));
    expect(segmentation.mask).toEqual({ width: 3, height: 2, labels: Buffer.from([0, 1, 2, 2, 1, 0]).toString('base64'), classes: ['others', 'road', 'water'] });
    expect(segmentation).not.toHaveProperty('caption');
    const change = fromProtoResult(await perform('CHANGE'));
    expect(change).toMatchObject({ task: 'change', caption: 'a road was built.', mask: { classes: ['others', 'changed', 'x'] } });
    expect(change).not.toHaveProperty('boxes');
  });

  it('carries gRPC errors with their status code', async () => {
    const error = await new Promise<grpc.ServiceError>((resolve) => client.Answer({ requestId: 'q' }, (e) => resolve(e!)));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toBe('empty question');
  });
});
