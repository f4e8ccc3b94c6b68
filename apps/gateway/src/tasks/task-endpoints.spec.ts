import 'reflect-metadata';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { REFUSAL_REASONS } from '@rsmoe/contracts';
import { decodeCocoRle } from '@rsmoe/region-outputs';
import type { Polygon } from 'geojson';
import sharp from 'sharp';
import { geoTiff } from '../../../../libs/geo/test-support/geotiff-fixtures';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskCall } from '../adapters/router.port';
import { RouterCallError } from '../errors/router-status.mapping';
import { cannedTaskResult, images, multipartForm, startTestGateway, type FakeRouter, type TestGateway } from '../testing/gateway-test-kit';
import type { TaskAnswer } from './task-answer';

/** RSUniVLM's endpoints on the in-process gateway: real HTTP and Redis, a fake router. */
describe("gateway: RSUniVLM's task endpoints", () => {
  let test: TestGateway;
  let router: FakeRouter;
  let base: string;
  let png: Buffer;
  const form = multipartForm;

  beforeAll(async () => {
    test = await startTestGateway();
    ({ router, base } = test);
    png = await images.png(40, 20);
  });

  afterAll(() => test?.close());

  beforeEach(() => {
    router.behaviour = undefined;
  });

  async function post(path: string, fields: Record<string, string | Buffer>): Promise<{ status: number; body: TaskAnswer & { error?: { code: string; message: string } } }> {
    const response = await fetch(`${base}${path}`, { method: 'POST', body: form(fields) });
    return { status: response.status, body: (await response.json()) as TaskAnswer & { error?: { code: string; message: string } } };
  }

  const lastCall = (): TaskCall => router.calls.at(-1)!.call as TaskCall;

  it('classify: the label of the image-level expert', async () => {
    const { status, body } = await post('/v1/classify', { image: png });
    expect(status).toBe(200);
    expect(body).toMatchObject({ task: 'classification', label: 'farmland', labelScores: [{ label: 'farmland', value: 0.7 }, { label: 'forest', value: 0.3 }] });
    expect(lastCall()).toMatchObject({ task: 'classification', images: [{ mediaType: 'image/png' }] });
  });

  it('grounding: the query goes to the router; boxes come back in pixels and in [0, 1], with the phrase', async () => {
    const { status, body } = await post('/v1/grounding', { image: png, query: '  the  runway ' });
    expect(status).toBe(200);
    expect(lastCall()).toMatchObject({ task: 'grounding', query: 'the runway' });
    // The canned box is [25, 25, 75, 50] percent of a 40×20 image.
    expect(body.boxes).toEqual([{ phrase: 'the runway', boxPx: [10, 5, 30, 10], boxNorm: [0.25, 0.25, 0.75, 0.5] }]);
  });

  it('referring: a pixel or normalised box becomes percent for the router; the description and the box come back', async () => {
    const px = await post('/v1/referring', { image: png, box: '4,2,20,10' });
    expect(px.status).toBe(200);
    expect(lastCall().box).toEqual({ x1: 10, y1: 10, x2: 50, y2: 50 });
    expect(px.body).toMatchObject({ caption: 'a storage tank.', box: { boxPx: [4, 2, 20, 10], boxNorm: [0.1, 0.1, 0.5, 0.5] } });
    const norm = await fetch(`${base}/v1/referring`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: png.toString('base64'), box: [0.1, 0.1, 0.5, 0.5], units: 'norm' }),
    });
    expect(norm.status).toBe(200);
    expect(lastCall().box).toEqual({ x1: 10, y1: 10, x2: 50, y2: 50 });
  });

  it('segmentation: the grid is rendered at the image size as a single-channel PNG, with COCO RLE and areas per class', async () => {
    const { status, body } = await post('/v1/segmentation', { image: png, classes: 'building, water' });
    expect(status).toBe(200);
    expect(lastCall().classes).toEqual(['building', 'water']);
    const mask = body.mask!;
    expect(mask).toMatchObject({ width: 40, height: 20 });
    const pngBytes = Buffer.from(mask.png, 'base64');
    // IHDR: bit depth 8, colour type 0 (greyscale): one 8-bit channel, so pixel values are class indices.
    expect([pngBytes[24], pngBytes[25]]).toEqual([8, 0]);
    const { data, info } = await sharp(pngBytes).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: 40, height: 20, channels: 1 });
    // The canned 2×2 grid [0 1; 1 0] scaled up: the top-left quarter is others, the top-right building.
    expect([data[0], data[39], data[20 * 40 - 1]]).toEqual([0, 1, 0]);
    expect(mask.classes.map((entry) => [entry.name, entry.areaFraction])).toEqual([
      ['others', 0.5],
      ['building', 0.5],
      ['water', 0],
    ]);
    // pycocotools' column-major RLE decodes back to the PNG's pixels of that class.
    const building = decodeCocoRle(mask.classes[1].rle);
    expect([...building].every((value, i) => value === (data[i] === 1 ? 1 : 0))).toBe(true);
  });

  it('changes: before and after go to the router in that order; caption, mask and the changed fraction come back', async () => {
    const after = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#223344' } }).png().toBuffer();
    const { status, body } = await post('/v1/changes', { before: png, after, output: 'both' });
    expect(status).toBe(200);
    const call = lastCall();
    expect(call.task).toBe('change');
    expect(call.changeOutput).toBe('both');
    expect(call.images).toHaveLength(2);
    expect(call.images[0].sha256).not.toBe(call.images[1].sha256);
    expect(body).toMatchObject({ task: 'change', caption: 'two buildings were built.', changedFraction: 0.5 });
  });

  it('refuses bad task input with a status and a code naming the problem, before calling the router', async () => {
    const small = await images.png(10, 10);
    const calls = router.calls.length;
    const cases: [string, Record<string, string | Buffer>, number, string, RegExp][] = [
      ['/v1/grounding', { image: png }, 400, 'missing_field', /query/],
      ['/v1/referring', { image: png }, 400, 'missing_field', /box/],
      ['/v1/referring', { image: png, box: '30,2,20,10' }, 400, 'invalid_field', /empty/],
      ['/v1/referring', { image: png, box: '0,0,50,10' }, 400, 'invalid_field', /outside the image \(40×20 px\)/],
      ['/v1/referring', { image: png, box: '0,0,1,1', units: 'inch' }, 400, 'invalid_field', /units/],
      ['/v1/segmentation', { image: png }, 400, 'missing_field', /classes.*query/],
      ['/v1/segmentation', { image: png, classes: 'road*2' }, 400, 'invalid_field', /class name/],
      ['/v1/changes', { before: png }, 400, 'missing_image', /"after"/],
      ['/v1/changes', { before: png, after: small }, 422, 'image_size_mismatch', /before is 40×20, after is 10×10/],
      ['/v1/changes', { before: png, after: png, output: 'movie' }, 400, 'invalid_field', /output/],
      ['/v1/classify', { image: png, query: 'x' }, 400, 'unknown_field', /query/],
    ];
    for (const [path, fields, status, code, message] of cases) {
      const { status: got, body } = await post(path, fields);
      expect({ path, status: got, code: body.error?.code }).toEqual({ path, status, code });
      expect(body.error?.message).toMatch(message);
    }
    expect(router.calls.length).toBe(calls);
  });

  it('segmentation and changes have their own, longer default and maximum deadlines (masks are long text)', async () => {
    const before = Date.now();
    expect((await post('/v1/segmentation', { image: png, query: 'water' })).status).toBe(200);
    // LONG_TASK_TIMEOUT_MS (default 300 s), not REQUEST_TIMEOUT_MS (5 s in this test gateway).
    expect(lastCall().deadlineUnixMs - before).toBeGreaterThanOrEqual(299_000);
    expect((await post('/v1/segmentation', { image: png, query: 'water', timeoutMs: '600000' })).status).toBe(200);
    const caption = await fetch(`${base}/v1/captions`, { method: 'POST', body: form({ image: png, timeoutMs: '600000' }) });
    expect(caption.status).toBe(400);
    const tooLong = await post('/v1/changes', { before: png, after: png, timeoutMs: '1800001' });
    expect(tooLong.body.error).toMatchObject({ code: 'invalid_timeout', message: expect.stringContaining('1800000 ms') });
  });

  it('Prefer: respond-async answers 202 at once; GET /v1/requests/{id} is 202 while it runs, then its answer or its error', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    router.behaviour = async (call) => {
      await gate;
      return cannedTaskResult(call as TaskCall);
    };
    const submitted = await fetch(`${base}/v1/segmentation`, { method: 'POST', headers: { Prefer: 'wait=5, respond-async' }, body: form({ image: png, query: 'water' }) });
    expect(submitted.status).toBe(202);
    const pending = (await submitted.json()) as { requestId: string; status: string; location: string };
    expect(pending).toMatchObject({ status: 'pending', location: `/v1/requests/${pending.requestId}` });
    expect(submitted.headers.get('location')).toBe(pending.location);
    expect(submitted.headers.get('preference-applied')).toBe('respond-async');
    expect(submitted.headers.get('x-request-id')).toBe(pending.requestId);
    const running = await fetch(`${base}${pending.location}`);
    expect(running.status).toBe(202);
    expect(running.headers.get('retry-after')).toBe('1');
    release();
    await expect.poll(async () => (await fetch(`${base}${pending.location}`)).status).toBe(200);
    const done = (await (await fetch(`${base}${pending.location}`)).json()) as TaskAnswer;
    expect(done).toMatchObject({ requestId: pending.requestId, task: 'segmentation', mask: { width: 40, height: 20 } });

    router.behaviour = async () => {
      throw new RouterCallError(GrpcStatus.DEADLINE_EXCEEDED, 'late');
    };
    const late = (await (await fetch(`${base}/v1/classify`, { method: 'POST', headers: { Prefer: 'respond-async' }, body: form({ image: png }) })).json()) as { location: string; requestId: string };
    await expect.poll(async () => (await fetch(`${base}${late.location}`)).status).toBe(408);
    expect(await (await fetch(`${base}${late.location}`)).json()).toMatchObject({ error: { code: 'deadline_exceeded', requestId: late.requestId } });

    // Bad input is refused at once, as without the preference.
    const bad = await fetch(`${base}/v1/grounding`, { method: 'POST', headers: { Prefer: 'respond-async' }, body: form({ image: png }) });
    expect(bad.status).toBe(400);
  });

  it('a georeferenced GeoTIFF gets GeoJSON in EPSG:4326 (lon, lat) and in its own CRS; an unmappable CRS says why', async () => {
    // 40×20 pixels of 0.001°, the top-left corner at 10° E, 50° N.
    const tiff = Buffer.from(
      geoTiff(40, 20, { ModelTiepoint: [0, 0, 0, 10, 50, 0], ModelPixelScale: [0.001, 0.001, 0], GTModelTypeGeoKey: 2, GeographicTypeGeoKey: 4326 }),
    );
    const grounding = await post('/v1/grounding', { image: tiff, query: 'the runway' });
    expect(grounding.status).toBe(200);
    // The canned box [25, 25, 75, 50] % is pixels [10, 5, 30, 10].
    const feature = grounding.body.geojson!.features[0];
    expect(feature.properties).toEqual({ phrase: 'the runway' });
    const ring = (feature.geometry as Polygon).coordinates[0];
    const lons = ring.map(([lon]) => lon);
    const lats = ring.map(([, lat]) => lat);
    expect([Math.min(...lons), Math.max(...lons)].map((v) => +v.toFixed(9))).toEqual([10.01, 10.03]);
    expect([Math.min(...lats), Math.max(...lats)].map((v) => +v.toFixed(9))).toEqual([49.99, 49.995]);
    expect(ring[0]).toEqual(ring.at(-1));
    expect(grounding.body.nativeCrs?.epsg).toBe(4326);
    const segmentation = await post('/v1/segmentation', { image: tiff, classes: 'building' });
    expect(segmentation.body.geojson!.features.map((f) => f.properties)).toEqual([{ class: 'building', index: 1 }]);
    expect(segmentation.body.geojson!.features[0].geometry?.type).toBe('MultiPolygon');
    // A user-defined projected CRS (32767): the answer stands, without GeoJSON, saying why.
    const custom = Buffer.from(geoTiff(40, 20, { ModelTiepoint: [0, 0, 0, 1000, 2000, 0], ModelPixelScale: [1, 1, 0], GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 32767 }));
    const unmapped = await post('/v1/grounding', { image: custom, query: 'the runway' });
    expect(unmapped.status).toBe(200);
    expect(unmapped.body.geojson).toBeUndefined();
    expect(unmapped.body.georeference).toMatchObject({ status: 'unsupported', reason: 'user-defined-crs' });
    // Not a TIFF: no georeferencing at all.
    expect((await post('/v1/grounding', { image: png, query: 'x' })).body).not.toHaveProperty('georeference');
  });

  it('DELETE /v1/requests/{id} erases the answer, the images and their cached features (409 while it runs, 404 after)', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    router.behaviour = async (call) => {
      await gate;
      return cannedTaskResult(call as TaskCall);
    };
    const image = await images.png(24, 24);
    const submitted = (await (await fetch(`${base}/v1/classify`, { method: 'POST', headers: { Prefer: 'respond-async' }, body: form({ image }) })).json()) as { requestId: string; location: string };
    const sha256 = lastCall().images[0].sha256;
    // What an expert would have cached for this image, under two encoders.
    const { redis, config } = test;
    const featureKeys = [`${config.KEY_PREFIX}:features:enc-a:anyres:${sha256}`, `${config.KEY_PREFIX}:features:enc-b:single-crop:${sha256}`];
    for (const key of featureKeys) await redis.set(key, 'features');
    const running = await fetch(`${base}${submitted.location}`, { method: 'DELETE' });
    expect(running.status).toBe(409);
    expect(((await running.json()) as { error: { code: string } }).error.code).toBe('request_pending');
    release();
    await expect.poll(async () => (await fetch(`${base}${submitted.location}`)).status).toBe(200);
    const erased = await fetch(`${base}${submitted.location}`, { method: 'DELETE' });
    expect(erased.status).toBe(204);
    expect((await fetch(`${base}${submitted.location}`)).status).toBe(404);
    expect(await redis.exists(`${config.KEY_PREFIX}:blob:${sha256}`, ...featureKeys)).toBe(0);
    expect((await fetch(`${base}${submitted.location}`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${base}/v1/requests/${'0'.repeat(32)}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('a task the pack does not serve is 422 task_not_supported naming what it serves', async () => {
    router.behaviour = async () => {
      throw new RouterCallError(GrpcStatus.FAILED_PRECONDITION, 'task grounding is not supported by this pack (no expert of the pack has a grounding prompt); it serves: caption, vqa', {
        reason: REFUSAL_REASONS.taskNotSupported,
      });
    };
    const { status, body } = await post('/v1/grounding', { image: png, query: 'a road' });
    expect(status).toBe(422);
    expect(body.error).toMatchObject({ code: 'task_not_supported', message: expect.stringContaining('it serves: caption, vqa') });
  });

  it('every routed expert unparseable is 502 experts_failed with each expert detail; one good expert of two is 200 degraded', async () => {
    router.behaviour = async (call) => {
      const result = cannedTaskResult(call as TaskCall);
      return { ...result, boxes: [], degraded: true, missingExperts: ['theme'], experts: result.experts.map((e) => ({ ...e, status: 'unparseable' as const, errorCode: 'unparseable_output' as const, error: 'no box' })) };
    };
    const failed = await post('/v1/grounding', { image: png, query: 'a road' });
    expect(failed.status).toBe(502);
    expect(failed.body.error).toMatchObject({ code: 'experts_failed', message: expect.stringContaining('unparseable_output') });
    router.behaviour = async (call) => {
      const result = cannedTaskResult(call as TaskCall);
      const failedOne = { ...result.experts[0], expertId: 'pixel', status: 'timed_out' as const, errorCode: 'deadline_exceeded' as const, text: '' };
      return { ...result, mask: undefined, degraded: true, missingExperts: ['pixel'], experts: [...result.experts, failedOne] };
    };
    const degraded = await post('/v1/changes', { before: png, after: png });
    expect(degraded.status).toBe(200);
    expect(degraded.body).toMatchObject({ degraded: true, missingExperts: ['pixel'], caption: 'two buildings were built.' });
    expect(degraded.body.mask).toBeUndefined();
  });
});
