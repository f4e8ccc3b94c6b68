import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisKeys } from '@rsmoe/contracts';
import { writeTiledGeoTiff } from '../test-support/tiled-geotiff';
import { mergeTileBoxes } from './box-merge';
import { fuseSceneCaption } from './caption-fusion';
import { mosaicMasks } from './mask-mosaic';
import { SceneInputError } from './scene-errors';
import { openSceneRaster, resolveBands } from './scene-raster';
import { acceptScene, parseSceneTasks } from './scene-request';
import { SceneFileStore } from './scene-files.adapter';
import { SceneStateStore } from './scene-state.adapter';
import { SceneStoreSweeper } from './scene-store-sweeper';
import { stitchScene } from './scene-stitcher';
import type { SceneSpec, TileRecord } from './scene.types';
import { planTileGrid, tileAt } from './tile-grid';

const dir = mkdtempSync(join(tmpdir(), 'rsmoe-scenes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function head(path: string): Uint8Array {
  return readFileSync(path).subarray(0, 8);
}

describe('tile grid', () => {
  it('covers the scene with the last tile at the edge and cores splitting each overlap', () => {
    const grid = planTileGrid(1000, 300, 256, 32);
    expect(grid.xs).toEqual([0, 224, 448, 672, 744]);
    expect(grid.ys).toEqual([0, 44]);
    expect(grid.coreXs[0]).toBe(0);
    expect(grid.coreXs.at(-1)).toBe(1000);
    // The core boundary is the middle of the overlap of tiles 0 and 1: (224 + 256) / 2.
    expect(grid.coreXs[1]).toBe(240);
    const last = tileAt(grid, grid.columns * grid.rows - 1, 1000, 300);
    expect([last.x + last.width, last.y + last.height]).toEqual([1000, 300]);
  });

  it('a scene smaller than a tile is one tile; a bad tiling is 400 invalid_field', () => {
    const grid = planTileGrid(100, 50, 256, 32);
    expect([grid.columns, grid.rows]).toEqual([1, 1]);
    expect(tileAt(grid, 0, 100, 50)).toMatchObject({ width: 100, height: 50 });
    expect(() => planTileGrid(100, 100, 64, 32)).toThrow(SceneInputError);
    expect(() => planTileGrid(100, 100, 8, 0)).toThrow(/tileSize/);
  });
});

describe('stitching', () => {
  const grid = planTileGrid(200, 100, 120, 40);
  const tiles = [tileAt(grid, 0, 200, 100), tileAt(grid, 1, 200, 100)];

  it('merges one object seen whole by two tiles, drops its piece cut by a border, joins two pieces of one large object', () => {
    const merged = mergeTileBoxes(
      [
        // Object A, whole in both tiles (tiles overlap on x ∈ [80, 120)).
        { box: { phrase: 'car', box: [90, 10, 110, 30] }, tile: tiles[0] },
        { box: { phrase: 'car', box: [91, 10, 110, 31] }, tile: tiles[1] },
        // Object B at x ∈ [100, 140): tile 0 sees a piece (to its border at 120), tile 1 sees it whole.
        { box: { phrase: 'car', box: [100, 50, 120, 70] }, tile: tiles[0] },
        { box: { phrase: 'car', box: [100, 50, 140, 70] }, tile: tiles[1] },
        // A large object x ∈ [20, 180) larger than the overlap: a piece in each tile.
        { box: { phrase: 'road', box: [20, 80, 120, 95] }, tile: tiles[0] },
        { box: { phrase: 'road', box: [80, 80, 180, 95] }, tile: tiles[1] },
      ],
      200,
      100,
    );
    const cars = merged.filter((box) => box.phrase === 'car').map((box) => box.box);
    expect(cars).toHaveLength(2);
    expect(cars).toContainEqual([100, 50, 140, 70]);
    const roads = merged.filter((box) => box.phrase === 'road');
    expect(roads.map((box) => box.box)).toEqual([[20, 80, 180, 95]]);
    expect(roads[0]).toMatchObject({ votes: 2, truncated: true });
  });

  it('mosaics each tile core from its own grid, 255 where a tile has no mask', () => {
    const labels = (value: number) => Buffer.from(new Uint8Array(4).fill(value)).toString('base64');
    const mosaic = mosaicMasks(grid, 200, 100, ['water'], (index) => (index === 0 ? { width: 2, height: 2, classes: ['others', 'water'], labels: labels(1) } : undefined));
    expect(mosaic.classes).toEqual(['others', 'water']);
    expect(mosaic.scale).toBe(1);
    const at = (x: number, y: number) => mosaic.mask.data[y * 200 + x];
    expect(at(grid.coreXs[1] - 1, 50)).toBe(1);
    expect(at(grid.coreXs[1], 50)).toBe(255);
  });

  it('fuses a scene caption from the sentences most tiles say, in caption order, with the class shares first', () => {
    const caption = fuseSceneCaption(
      ['this is a forest . a road crosses it .', 'this is a forest . a river runs through it .', 'it is a forest . a road crosses it .', 'a lake .'],
      [
        { label: 'forest', share: 0.75 },
        { label: 'lake', share: 0.25 },
      ],
    );
    expect(caption.sentences.map((s) => [s.text, s.tiles])).toEqual([
      ['This is a forest.', 2],
      ['A road crosses it.', 2],
    ]);
    expect(caption.text).toBe('The scene is mostly forest (75 % of tiles) and lake (25 % of tiles). This is a forest. A road crosses it.');
  });

  it('a scene without georeferencing: pixel coordinates, said so', async () => {
    const spec = {
      sceneId: 'a'.repeat(32),
      createdAtUnixMs: 0,
      file: { name: 'x.tif', bytes: 1 },
      raster: { width: 200, height: 100, bandCount: 3, bitsPerSample: 8, sampleFormat: 'uint', compression: { code: 1, name: 'none' }, nodata: null, layout: 'tiled' },
      bands: [0, 1, 2],
      grid,
      tasks: { grounding: ['car'], classification: true },
      georeference: null,
    } satisfies SceneSpec;
    const records = new Map<number, TileRecord>([
      [0, { index: 0, label: 'forest', boxes: [{ phrase: 'car', box: [10, 10, 20, 20] }] }],
      [1, { index: 1, skipped: 'nodata' }],
    ]);
    const { result } = await stitchScene(spec, records);
    expect(result.georeference.status).toBe('none');
    expect(result.tiles).toMatchObject({ total: 2, done: 2, skippedNodata: 1 });
    expect(result.classification?.labels).toEqual([['forest', null]]);
    const box = result.geojson.features.find((f) => f.properties.kind === 'box');
    expect(box?.geometry).toEqual({ type: 'Polygon', coordinates: [[[10, 10], [20, 10], [20, 20], [10, 20], [10, 10]]] });
    expect(result.nativeCrs).toBeUndefined();
  });
});

describe('scene files', () => {
  const pixels = (value: (x: number, y: number) => number) => (x0: number, y0: number, w: number, h: number) => {
    const out = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.fill(value(x0 + x, y0 + y), ((y * w) + x) * 3, ((y * w) + x) * 3 + 3);
    return out;
  };

  it('reads windows from a tiled deflate GeoTIFF, finds nodata and uniform tiles, and its georeference', async () => {
    const path = join(dir, 'ok.tif');
    writeTiledGeoTiff(path, {
      width: 300,
      height: 200,
      bands: 3,
      tileSide: 64,
      compression: 'deflate',
      nodata: 0,
      geo: { epsg: 32633, originX: 500_000, originY: 4_600_000, pixelSize: 2 },
      pixels: pixels((x, y) => (x < 100 ? 0 : x < 200 ? 77 : (x + y) % 250 + 1)),
    });
    const raster = await openSceneRaster(path, head(path), { maxPixels: 1e9 });
    try {
      expect(raster.info).toMatchObject({ width: 300, height: 200, bandCount: 3, compression: { name: 'deflate' }, nodata: 0, layout: 'tiled' });
      expect(raster.georeference?.crs.epsg).toBe(32633);
      expect(raster.georeference?.transform).toMatchObject({ a: 2, c: 500_000, e: -2, f: 4_600_000 });
      expect((await raster.readWindow({ x: 0, y: 0, width: 64, height: 64 }, [0, 1, 2])).empty).toBe('nodata');
      expect((await raster.readWindow({ x: 120, y: 10, width: 64, height: 64 }, [0, 1, 2])).empty).toBe('uniform');
      const content = await raster.readWindow({ x: 210, y: 5, width: 20, height: 10 }, [2, 1, 0]);
      expect(content.empty).toBeUndefined();
      expect(content.rgb[0]).toBe((210 + 5) % 250 + 1);
    } finally {
      await raster.close();
    }
  });

  it('refuses what would fail later: not a TIFF, truncated, an unknown compression, too many pixels, bands out of range', async () => {
    const good = join(dir, 'good.tif');
    writeTiledGeoTiff(good, { width: 128, height: 128, bands: 3, tileSide: 64, pixels: pixels(() => 5) });
    const truncated = join(dir, 'truncated.tif');
    writeFileSync(truncated, readFileSync(good).subarray(0, 10_000));
    const jpeg2000 = join(dir, 'j2k.tif');
    writeTiledGeoTiff(jpeg2000, { width: 64, height: 64, bands: 3, compression: 34712, pixels: pixels(() => 5) });
    const code = async (path: string, maxPixels = 1e9) => openSceneRaster(path, head(path), { maxPixels }).then(
      async (raster) => {
        await raster.close();
        return 'opened';
      },
      (error: SceneInputError) => `${error.status} ${error.code}`,
    );
    expect(await code(truncated)).toBe('422 invalid_scene');
    expect(await code(jpeg2000)).toBe('422 unsupported_compression');
    expect(await code(good, 1000)).toBe('422 too_many_pixels');
    writeFileSync(join(dir, 'png.tif'), Buffer.from('\x89PNG\r\n\x1a\n'));
    expect(await code(join(dir, 'png.tif'))).toBe('415 unsupported_media_type');
    expect(await code(good)).toBe('opened');
    expect(() => resolveBands([0, 1, 3], 3)).toThrow(/band 3 requested but the scene has 3 bands/);
    expect(resolveBands([1], 4)).toEqual([1, 1, 1]);
  });

  it('accepts a scene into a spec, the fields checked first', async () => {
    const path = join(dir, 'accept.tif');
    writeTiledGeoTiff(path, { width: 500, height: 300, bands: 4, tileSide: 64, pixels: (x0, y0, w, h) => new Uint8Array(w * h * 4).fill(9) });
    const spec = await acceptScene(
      { sceneId: 'b'.repeat(32), path, head: head(path), fileName: 'a.tif', bytes: 1, fields: { tasks: 'segmentation,caption', bands: '3,2,1' }, now: 1 },
      { tileSize: 256, segmentationClasses: ['water', 'road'] },
      { maxPixels: 1e9 },
    );
    expect(spec).toMatchObject({ bands: [3, 2, 1], tasks: { caption: true, segmentation: ['water', 'road'] }, grid: { tileSize: 256, overlap: 32, columns: 3, rows: 2 }, georeference: null });
    expect(() => parseSceneTasks({ tasks: 'grounding' }, { segmentationClasses: [] })).toThrow(/phrases/);
    expect(() => parseSceneTasks({ tasks: 'caption', classes: 'a' }, { segmentationClasses: [] })).toThrow(/only with the segmentation task/);
  });
});

describe('scene state in Redis', () => {
  let redis: Redis;
  const keys = createRedisKeys(`scenes-spec-${randomBytes(4).toString('hex')}`);
  const spec = { sceneId: 'c'.repeat(32), grid: planTileGrid(512, 512, 256, 32) } as unknown as SceneSpec;

  beforeAll(() => {
    redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    const found = await redis.keys(`${keys.prefix}:*`);
    if (found.length > 0) await redis.del(...found);
    redis.disconnect();
  });

  it('counts a tile once, and takes none once the scene is cancelled', async () => {
    const store = new SceneStateStore(redis, keys);
    await store.create(spec);
    expect(await store.transition(spec.sceneId, 'running')).toBe(true);
    expect(await store.recordTile(spec.sceneId, { index: 2, skipped: 'uniform' })).toBe(true);
    expect(await store.recordTile(spec.sceneId, { index: 2, caption: 'again' })).toBe(false);
    expect(await store.recordTile(spec.sceneId, { index: 0, failures: [{ task: 'caption', code: 'x', message: 'y' }] })).toBe(true);
    expect(await store.get(spec.sceneId)).toMatchObject({ status: 'running', tilesDone: 2, tilesSkipped: 1, tilesFailed: 1 });
    expect([...(await store.tiles(spec.sceneId)).keys()].sort()).toEqual([0, 2]);
    expect(await store.transition(spec.sceneId, 'cancelled')).toBe(true);
    expect(await store.transition(spec.sceneId, 'running')).toBe(false);
    expect(await store.recordTile(spec.sceneId, { index: 1 })).toBe(false);
    expect((await store.get(spec.sceneId))?.tilesDone).toBe(2);
  });

  it('gives back, when the scene ends, the reserved images of tiles it never processed (once, whatever ends it)', async () => {
    const store = new SceneStateStore(redis, keys);
    const usageKey = `${keys.prefix}:usage-test`;
    const scene = { ...spec, sceneId: 'd'.repeat(32) } as SceneSpec;
    // 4 tiles reserved on top of 10 images used earlier today.
    await redis.set(usageKey, '14');
    await store.create(scene, { usageKey, images: 4 });
    await store.transition(scene.sceneId, 'running');
    await store.recordTile(scene.sceneId, { index: 0, caption: 'a road .' });
    await store.recordTile(scene.sceneId, { index: 1, skipped: 'nodata' });
    await store.recordTile(scene.sceneId, { index: 2, failures: [{ task: 'caption', code: 'x', message: 'y' }] });
    // Cancelled before tile 3: only tile 0 was processed.
    expect(await store.transition(scene.sceneId, 'cancelled')).toBe(true);
    expect(await redis.get(usageKey)).toBe('11');
    expect(await store.transition(scene.sceneId, 'done')).toBe(false);
    expect(await redis.get(usageKey)).toBe('11');
  });

  it('sweeps from disk the scenes Redis no longer holds, once nothing was written to them for the grace period', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rsmoe-sweep-'));
    try {
      const files = new SceneFileStore(root);
      const store = new SceneStateStore(redis, keys);
      const live = { ...spec, sceneId: 'e'.repeat(32) } as SceneSpec;
      const expired = 'f'.repeat(32);
      const uploading = '1'.repeat(32);
      for (const id of [live.sceneId, expired, uploading]) writeFileSync(await files.prepare(id), 'II*');
      await store.create(live);
      let now = Date.now() + 60_000;
      const sweeper = new SceneStoreSweeper(files, store, 120_000, () => now);
      // Within the grace period nothing goes, the scene without state included (it may still be uploading).
      expect(await sweeper.sweepOnce()).toEqual([]);
      now += 120_000;
      expect((await sweeper.sweepOnce()).sort()).toEqual([uploading, expired].sort());
      expect(await files.list()).toEqual([live.sceneId]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
