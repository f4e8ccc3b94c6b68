import { mkdtempSync, openAsBlob, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import proj4 from 'proj4';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCENES_QUEUE } from '@rsmoe/contracts';
import { planTileGrid, tileAt, type SceneResult } from '@rsmoe/scenes';
import { writeTiledGeoTiff } from '../../libs/scenes/test-support/tiled-geotiff';
import { composeSyntheticScene, writeSceneTiff, type ComposedScene } from './scene-fixture';
import { startMesh, type RunningMesh } from './mesh-fixture';

/**
 * The mechanics of whole scenes (upload, tiling, bulk priority, stitching, georeferencing, resume, cancel) on
 * the tiny RSUniVLM-shaped fixture pack, whose random experts write no parseable box or mask: what the stitched
 * answers are worth against the tiles one by one needs trained region and pixel experts (models/demo).
 */
const SCENE_PACK_DIR = resolve(__dirname, '../../models/fixtures/tiny-unipack');

/** The synthetic scene: 8 × 8 libs/synth scenes of 128 px (the demo pack's input size): 1024 × 1024. */
const ACROSS = 8;
const CELL = 128;
/** WGS 84 / UTM 33N, 0.5 m pixels. */
const GEO = { epsg: 32633, originX: 500_000, originY: 4_600_000, pixelSize: 0.5 };
const PHRASE = 'building';
const SEG_CLASSES = ['building', 'road'];
/** A small limit so that "too big" is cheap to send. */
const MAX_SCENE_BYTES = 8 * 1024 * 1024;

type SceneAnswer = {
  sceneId: string;
  status: string;
  progress: { tilesTotal: number; tilesDone: number; tilesSkipped: number; tilesFailed: number; etaSeconds?: number };
  tiling: { tileSize: number; overlap: number; columns: number; rows: number };
  georeference: { status: string };
  error?: { code: string; message: string };
  result?: SceneResult;
};

async function postScene(url: string, file: string, fields: Record<string, string>): Promise<{ status: number; body: SceneAnswer & { error?: { code: string; message: string } } }> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append('scene', await openAsBlob(file), 'scene.tif');
  const response = await fetch(`${url}/v1/scenes`, { method: 'POST', body: form });
  return { status: response.status, body: (await response.json()) as SceneAnswer & { error?: { code: string; message: string } } };
}

async function getScene(url: string, sceneId: string): Promise<SceneAnswer> {
  const response = await fetch(`${url}/v1/scenes/${sceneId}`);
  expect(response.status).toBe(200);
  return (await response.json()) as SceneAnswer;
}

async function waitFor(url: string, sceneId: string, until: (answer: SceneAnswer) => boolean, timeoutMs: number, seen: SceneAnswer[] = []): Promise<SceneAnswer> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const answer = await getScene(url, sceneId);
    seen.push(answer);
    if (until(answer)) return answer;
    if (Date.now() > end) throw new Error(`scene ${sceneId} still ${answer.status} (${answer.progress.tilesDone}/${answer.progress.tilesTotal}) after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const terminal = (answer: SceneAnswer) => ['done', 'failed', 'cancelled'].includes(answer.status);

describe('whole scenes through the mesh (tiles at bulk priority, stitched, georeferenced, resumable)', { timeout: 180_000 }, () => {
  let running: RunningMesh;
  let dir: string;
  let scene: ComposedScene;
  let sceneFile: string;
  let scenesQueue: Queue;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rsmoe-scenes-e2e-'));
    scene = composeSyntheticScene(ACROSS, CELL, 7, 192);
    sceneFile = join(dir, 'scene.tif');
    writeSceneTiff(sceneFile, scene, GEO);
    running = await startMesh(
      {
        SCENE_STORE_DIR: join(dir, 'store'),
        MAX_SCENE_BYTES: String(MAX_SCENE_BYTES),
        SCENE_LOCK_MS: '2000',
        SCENE_STALLED_CHECK_MS: '1000',
        SCENE_TILE_CONCURRENCY: '4',
        CONCURRENCY: '8',
      },
      SCENE_PACK_DIR,
    );
    scenesQueue = new Queue(SCENES_QUEUE, { connection: running.redis, prefix: running.prefix });
  });

  afterAll(async () => {
    await scenesQueue?.obliterate({ force: true }).catch(() => undefined);
    await scenesQueue?.close();
    await running?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses bad scenes with a clear 4xx before anything is queued', async () => {
    const bad = (name: string) => join(dir, name);
    // Truncated: the upload stopped halfway (its tiles run past the end of the file).
    writeFileSync(bad('truncated.tif'), readFileSync(sceneFile).subarray(0, Math.floor(statSync(sceneFile).size / 2)));
    // Corrupt: a TIFF magic number and garbage.
    writeFileSync(bad('corrupt.tif'), Buffer.concat([Buffer.from('II*\0'), Buffer.alloc(64, 0xff)]));
    const small = (name: string, options: Partial<Parameters<typeof writeTiledGeoTiff>[1]>) =>
      writeTiledGeoTiff(bad(name), { width: 64, height: 64, bands: 3, pixels: (_x, _y, w, h) => new Uint8Array(w * h * 3).fill(90), ...options });
    small('jpeg2000.tif', { compression: 34712 });
    small('unknown-crs.tif', { geo: { ...GEO, epsg: 2193 } });
    small('plain.tif', {});
    writeFileSync(bad('png.tif'), await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer());
    writeFileSync(bad('big.tif'), Buffer.alloc(MAX_SCENE_BYTES + 1024));
    const cases: [string, Record<string, string>, number, string][] = [
      ['truncated.tif', { tasks: 'caption' }, 422, 'invalid_scene'],
      ['corrupt.tif', { tasks: 'caption' }, 422, 'invalid_scene'],
      ['jpeg2000.tif', { tasks: 'caption' }, 422, 'unsupported_compression'],
      ['unknown-crs.tif', { tasks: 'caption' }, 422, 'unsupported_georeference'],
      ['plain.tif', { tasks: 'caption', bands: '0,1,5' }, 422, 'invalid_bands'],
      ['png.tif', { tasks: 'caption' }, 415, 'unsupported_media_type'],
      ['big.tif', { tasks: 'caption' }, 413, 'scene_too_large'],
      ['plain.tif', { tasks: 'grounding' }, 400, 'missing_field'],
      ['plain.tif', { tasks: 'caption,painting' }, 400, 'invalid_field'],
      ['plain.tif', { tasks: 'caption', tileSize: '64', overlap: '40' }, 400, 'invalid_field'],
    ];
    for (const [file, fields, status, code] of cases) {
      const { status: got, body } = await postScene(running.url, bad(file), fields);
      expect({ file, status: got, code: body.error?.code }).toEqual({ file, status, code });
      expect(body.error?.message.length).toBeGreaterThan(10);
    }
    // A chunked raw upload declares no length: the stream itself is cut at the limit.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 9; i++) controller.enqueue(new Uint8Array(1024 * 1024));
        controller.close();
      },
    });
    const raw = await fetch(`${running.url}/v1/scenes?tasks=caption`, { method: 'POST', body: stream, headers: { 'content-type': 'image/tiff' }, duplex: 'half' } as RequestInit);
    expect(raw.status).toBe(413);
    expect(((await raw.json()) as { error: { code: string } }).error.code).toBe('scene_too_large');
    expect(await scenesQueue.getJobCountByTypes('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized')).toBe(0);
    for (const queue of running.queues.values()) expect(await queue.count()).toBe(0);
  });

  it('a georeferenced 1024 × 1024 scene: exact georeferencing, nodata tiles skipped, resumed after kill -9 of the scene worker and a gateway restart', async () => {
    const { status, body } = await postScene(running.url, sceneFile, { tasks: 'grounding,segmentation,classification', phrases: PHRASE, classes: SEG_CLASSES.join(',') });
    expect(status).toBe(202);
    const grid = planTileGrid(scene.width, scene.height, body.tiling.tileSize, body.tiling.overlap);
    expect(body.progress.tilesTotal).toBe(grid.columns * grid.rows);
    const seen: SceneAnswer[] = [];
    await waitFor(running.url, body.sceneId, (answer) => answer.progress.tilesDone >= 6, 90_000, seen);
    const beforeKill = (await getScene(running.url, body.sceneId)).progress.tilesDone;
    await running.mesh.stopService('scene-worker', 'SIGKILL');
    await running.mesh.stopService('gateway', 'SIGTERM');
    await running.mesh.startService('gateway');
    const whileDown = await getScene(running.url, body.sceneId);
    expect(whileDown.progress.tilesDone).toBeGreaterThanOrEqual(beforeKill);
    await running.mesh.startService('scene-worker');
    const done = await waitFor(running.url, body.sceneId, terminal, 150_000, seen);
    expect(done.status).toBe('done');
    // Progress never went back: no finished tile was lost to the restarts.
    const counts = seen.map((answer) => answer.progress.tilesDone);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(running.logs.some((line) => line.includes('[scene-worker]') && line.includes('scene running') && line.includes(`"tilesDone":`))).toBe(true);
    const result = done.result as SceneResult;
    expect(result.tiles.done).toBe(result.tiles.total);
    // The nodata square (192 px) holds whole tiles: skipped and counted, not sent.
    const inNodata = Array.from({ length: grid.columns * grid.rows }, (_, i) => tileAt(grid, i, scene.width, scene.height)).filter(
      (tile) => tile.x >= scene.width - 192 && tile.y >= scene.height - 192,
    ).length;
    expect(inNodata).toBeGreaterThan(0);
    expect(result.tiles.skippedNodata).toBe(inNodata);

    // Georeferencing exact, whatever the experts answered: every classification cell is its tile core's pixel
    // corners through the geotransform, in the native CRS, and those points reprojected in WGS 84.
    const utm = proj4('+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs', 'WGS84');
    const nativeCells = (result.nativeCrs?.featureCollection.features ?? []).filter((f) => f.properties.kind === 'tile-class');
    const wgsCells = result.geojson.features.filter((f) => f.properties.kind === 'tile-class');
    expect(nativeCells.length).toBe(grid.columns * grid.rows - inNodata);
    nativeCells.forEach((feature, i) => {
      const { column, row } = feature.properties as { column: number; row: number };
      const corners = [
        [grid.coreXs[column], grid.coreYs[row]],
        [grid.coreXs[column + 1], grid.coreYs[row + 1]],
      ].map(([x, y]) => [GEO.originX + x * GEO.pixelSize, GEO.originY - y * GEO.pixelSize]);
      const ring = (feature.geometry as { coordinates: number[][][] }).coordinates[0];
      for (const corner of corners) {
        expect(ring.some(([x, y]) => x === corner[0] && y === corner[1])).toBe(true);
        const [lon, lat] = utm.forward(corner);
        expect((wgsCells[i].geometry as { coordinates: number[][][] }).coordinates[0].some(([a, b]) => Math.abs(a - lon) < 1e-9 && Math.abs(b - lat) < 1e-9)).toBe(true);
      }
    });
    // Every box's native coordinates are its pixel corners through the geotransform, and
    // its WGS 84 corners the same points reprojected.
    expect(result.georeference).toMatchObject({ status: 'georeferenced', epsg: 32633 });
    const boxes = result.grounding?.boxes ?? [];
    const nativeBoxes = (result.nativeCrs?.featureCollection.features ?? []).filter((f) => f.properties.kind === 'box');
    const wgsBoxes = result.geojson.features.filter((f) => f.properties.kind === 'box');
    expect(nativeBoxes).toHaveLength(boxes.length);
    boxes.forEach((box, i) => {
      const [x1, y1] = box.boxPx;
      const ring = (nativeBoxes[i].geometry as { coordinates: number[][][] }).coordinates[0];
      const expected = [GEO.originX + x1 * GEO.pixelSize, GEO.originY - y1 * GEO.pixelSize];
      expect(ring.some(([x, y]) => Math.abs(x - expected[0]) < 1e-6 && Math.abs(y - expected[1]) < 1e-6)).toBe(true);
      const lonLat = utm.forward(expected);
      const wgsRing = (wgsBoxes[i].geometry as { coordinates: number[][][] }).coordinates[0];
      expect(wgsRing.some(([lon, lat]) => Math.abs(lon - lonLat[0]) < 1e-9 && Math.abs(lat - lonLat[1]) < 1e-9)).toBe(true);
    });

    const preview = await fetch(`${running.url}/v1/scenes/${body.sceneId}/preview.png`);
    expect(preview.headers.get('content-type')).toBe('image/png');
    const previewInfo = await sharp(Buffer.from(await preview.arrayBuffer())).metadata();
    expect([previewInfo.width, previewInfo.height]).toEqual([1024, 1024]);
  });

  it('a scene without georeferencing: caption fused from tiles, classification grid, pixel coordinates said', async () => {
    const small = composeSyntheticScene(2, CELL, 11);
    const file = join(dir, 'plain-scene.tif');
    writeSceneTiff(file, small);
    const { status, body } = await postScene(running.url, file, { tasks: 'caption,classification' });
    expect(status).toBe(202);
    expect(body.georeference.status).toBe('none');
    const done = await waitFor(running.url, body.sceneId, terminal, 90_000);
    expect(done.status).toBe('done');
    const result = done.result as SceneResult;
    expect(result.georeference).toMatchObject({ status: 'none' });
    expect(result.caption?.text.length).toBeGreaterThan(10);
    expect(result.caption?.sentences.every((s) => result.caption?.text.includes(s.text))).toBe(true);
    expect(result.classification?.labels.flat().filter((label) => label !== null)).toHaveLength(result.tiles.total);
    const cell = result.geojson.features.find((f) => f.properties.kind === 'tile-class');
    const xs = (cell?.geometry as { coordinates: number[][][] }).coordinates[0].map(([x]) => x);
    expect(Math.max(...xs)).toBeLessThanOrEqual(small.width);
    expect(result.nativeCrs).toBeUndefined();
  });

  it('DELETE cancels a running scene and frees its queued tile jobs', async () => {
    const file = join(dir, 'cancel.tif');
    writeSceneTiff(file, composeSyntheticScene(4, CELL, 13));
    const { body } = await postScene(running.url, file, { tasks: 'caption,segmentation', classes: 'building' });
    await waitFor(running.url, body.sceneId, (answer) => answer.progress.tilesDone >= 1, 60_000);
    const response = await fetch(`${running.url}/v1/scenes/${body.sceneId}`, { method: 'DELETE' });
    expect(response.status).toBe(202);
    const cancelled = await getScene(running.url, body.sceneId);
    expect(cancelled.status).toBe('cancelled');
    // Each left-over job as `id state attempts`, so a failure says which job stayed and why.
    const queuedOfScene = async () => {
      const left: string[] = [];
      for (const queue of running.queues.values()) {
        for (const job of await queue.getJobs(['waiting', 'prioritized', 'delayed'])) {
          if (job?.id?.startsWith(body.sceneId)) left.push(`${job.id} ${await job.getState()} attempts=${job.attemptsMade} ${job.failedReason ?? ''}`);
        }
      }
      return left;
    };
    // DELETE answers 202 at once (the gateway frees the tile jobs queued then); the scene worker sees the cancel
    // within SCENE_CANCEL_POLL_MS, stops its lanes (one may have sent another tile meanwhile), frees what they
    // queued and sweeps, then logs `scene cancelled` itself. From then on "no queued tile job" is the final
    // state, not at the first empty look.
    const workerConfirmed = (line: string) => line.startsWith('[scene-worker]') && line.includes('scene cancelled') && line.includes(body.sceneId);
    await expect.poll(() => running.logs.some(workerConfirmed), { timeout: 10_000, interval: 100 }).toBe(true);
    expect(await queuedOfScene()).toEqual([]);
    const doneAt = (await getScene(running.url, body.sceneId)).progress.tilesDone;
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await getScene(running.url, body.sceneId)).progress.tilesDone).toBe(doneAt);
    expect(await queuedOfScene()).toEqual([]);
  });
});
