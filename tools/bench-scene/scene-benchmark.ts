/**
 * `npm run bench:scene` (not CI): one whole synthetic scene through the running mesh, against the same tiles sent
 * as single-image requests, with interactive captions measured idle and while the scene runs.
 *
 *   npm run bench:scene -- [--size 8192] [--pack models/fixtures/tiny-unipack] [--tasks caption] [--tile-size N]
 *                          [--concurrency 8] [--single-tiles 256] [--probes 30]
 *
 * Prints, one line each with `met`/`MISSED`: tiles/s of the scene path ÷ tiles/s of the same tiles as single-image
 * requests at the same concurrency (goal ≥ 0.9), the peak RSS of every service over the whole scene (VmHWM of
 * /proc/<pid>/status, goal < 1 GiB) and the wall time, all of the scene alone; then interactive caption p50 while a
 * second scene (a quarter of the side) runs ÷ idle (goal ≤ 1.5).
 * The mesh runs on a private redis-server (its own port), under fresh prefixes.
 */
import { openAsBlob, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { MeshLauncher } from '../../apps/cli/src/mesh/mesh-launcher';
import { PrivateRedis } from '../../apps/cli/src/mesh/private-redis';
import { freePort } from '../../apps/cli/src/mesh/redis-locator';
import { percentile } from '@rsmoe/eval';
import { planTileGrid, tileAt } from '@rsmoe/scenes';
import { generateScene } from '@rsmoe/synth';
import { writeTiledGeoTiff } from '../../libs/scenes/test-support/tiled-geotiff';

const { values: flags } = parseArgs({
  options: {
    size: { type: 'string', default: '8192' },
    pack: { type: 'string', default: 'models/fixtures/tiny-unipack' },
    tasks: { type: 'string', default: 'caption' },
    'tile-size': { type: 'string' },
    concurrency: { type: 'string', default: '8' },
    'single-tiles': { type: 'string', default: '256' },
    probes: { type: 'string', default: '30' },
  },
});
const SIZE = Number(flags.size);
const CELL = 128;
const CONCURRENCY = Number(flags.concurrency);
const GIB = 1024 ** 3;

/** The scene's pixels: synth scenes of 128 px side by side, made per window (never the whole scene at once). */
function cellRgb(i: number, j: number): Uint8Array {
  return generateScene({ seed: 9000 + j * 4096 + i, size: CELL }).rgb;
}

function windowRgb(x0: number, y0: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  const cells = new Map<string, Uint8Array>();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = x0 + x;
      const sy = y0 + y;
      const key = `${Math.floor(sx / CELL)},${Math.floor(sy / CELL)}`;
      let cell = cells.get(key);
      if (!cell) {
        cell = cellRgb(Math.floor(sx / CELL), Math.floor(sy / CELL));
        cells.set(key, cell);
      }
      const from = ((sy % CELL) * CELL + (sx % CELL)) * 3;
      out.set(cell.subarray(from, from + 3), (y * w + x) * 3);
    }
  }
  return out;
}

async function postForm(url: string, path: string, form: FormData): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}${path}`, { method: 'POST', body: form });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function captionOnce(url: string, png: Buffer): Promise<number> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(png)]), 'probe.png');
  const started = performance.now();
  const { status } = await postForm(url, '/v1/captions', form);
  if (status !== 200) throw new Error(`interactive caption answered ${status}`);
  return performance.now() - started;
}

/** Interactive caption latencies, one request at a time, until `count` or `stop()` says so. */
async function probe(url: string, png: Buffer, count: number, stop: () => boolean = () => false): Promise<number[]> {
  const latencies: number[] = [];
  while (latencies.length < count && !stop()) {
    latencies.push(await captionOnce(url, png));
    await new Promise((r) => setTimeout(r, 100));
  }
  return latencies;
}

function peakRssBytes(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function p50(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50) ?? Number.NaN;
}

function goal(name: string, ok: boolean, text: string): void {
  console.log(`goal ${name}: ${text} ${ok ? 'met' : 'MISSED'}`);
}

/** Posts a scene and follows it to its end (a progress line every 10 s); returns its last status. */
async function runScene(url: string, file: string, tileSize: number, onStatus: (status: string) => void = () => undefined): Promise<string> {
  const form = new FormData();
  form.append('tasks', flags.tasks);
  form.append('tileSize', String(tileSize));
  form.append('scene', await openAsBlob(file), 'scene.tif');
  const accepted = await postForm(url, '/v1/scenes', form);
  if (accepted.status !== 202) throw new Error(`POST /v1/scenes answered ${accepted.status}: ${JSON.stringify(accepted.body)}`);
  const sceneId = String(accepted.body.sceneId);
  let lastLine = 0;
  for (;;) {
    const answer = (await (await fetch(`${url}/v1/scenes/${sceneId}`)).json()) as { status: string; progress: { tilesDone: number; tilesTotal: number; etaSeconds?: number } };
    onStatus(answer.status);
    if (performance.now() - lastLine > 10_000) {
      lastLine = performance.now();
      console.log(`  scene ${answer.status} ${answer.progress.tilesDone}/${answer.progress.tilesTotal}${answer.progress.etaSeconds !== undefined ? ` ETA ${answer.progress.etaSeconds} s` : ''}`);
    }
    if (['done', 'failed', 'cancelled'].includes(answer.status)) return answer.status;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rsmoe-bench-scene-'));
  const redis = await PrivateRedis.start();
  let mesh: MeshLauncher | undefined;
  try {
    const sceneFile = join(dir, 'scene.tif');
    const writeStart = performance.now();
    writeTiledGeoTiff(sceneFile, {
      width: SIZE,
      height: SIZE,
      bands: 3,
      tileSide: 256,
      compression: 'deflate',
      geo: { epsg: 32633, originX: 500_000, originY: 4_600_000, pixelSize: 0.5 },
      pixels: windowRgb,
    });
    console.log(`scene ${SIZE} × ${SIZE} written in ${((performance.now() - writeStart) / 1000).toFixed(1)} s`);
    const routerPort = await freePort();
    mesh = new MeshLauncher({
      packDir: resolve(flags.pack),
      redisUrl: redis.url,
      keyPrefix: 'bench',
      queuePrefix: 'bench',
      gatewayPort: await freePort(),
      routerPort,
      env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1', SCENE_STORE_DIR: join(dir, 'store'), SCENE_TILE_CONCURRENCY: String(CONCURRENCY), MAX_SCENE_BYTES: String(4 * GIB) },
      readyTimeoutMs: 120_000,
    });
    await mesh.start();
    const url = mesh.gatewayUrl;
    const probePng = await sharp(generateScene({ seed: 1, size: CELL }).rgb, { raw: { width: CELL, height: CELL, channels: 3 } }).png().toBuffer();
    await probe(url, probePng, 5);
    const idle = await probe(url, probePng, Number(flags.probes));

    // The same tiles as single-image requests (the first N of the grid, same concurrency, same task).
    const tileSize = flags['tile-size'] ? Number(flags['tile-size']) : CELL;
    const grid = planTileGrid(SIZE, SIZE, tileSize, Math.round(tileSize / 8));
    const total = grid.columns * grid.rows;
    const sample = Math.min(total, Number(flags['single-tiles']));
    let next = 0;
    const singleStart = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < sample) {
          const tile = tileAt(grid, next++, SIZE, SIZE);
          const png = await sharp(windowRgb(tile.x, tile.y, tile.width, tile.height), { raw: { width: tile.width, height: tile.height, channels: 3 } }).png({ compressionLevel: 3 }).toBuffer();
          const form = new FormData();
          form.append('image', new Blob([new Uint8Array(png)]), 'tile.png');
          const { status } = await postForm(url, '/v1/captions', form);
          if (status !== 200) throw new Error(`single-image tile request answered ${status}`);
        }
      }),
    );
    const singleRate = sample / ((performance.now() - singleStart) / 1000);
    console.log(`single-image path: ${sample} tiles at concurrency ${CONCURRENCY}: ${singleRate.toFixed(2)} tiles/s`);

    // The scene path, alone: its throughput, the services' peak RSS and the wall time.
    const sceneStart = performance.now();
    const status = await runScene(url, sceneFile, tileSize);
    const wallS = (performance.now() - sceneStart) / 1000;
    if (status !== 'done') throw new Error(`the scene ended ${status}`);
    const sceneRate = total / wallS;
    const rss = Object.entries(mesh.pids).map(([service, pid]) => [service, peakRssBytes(pid)] as const);
    console.log(`scene path: ${total} tiles in ${wallS.toFixed(1)} s wall (upload, tiles, stitching, preview): ${sceneRate.toFixed(2)} tiles/s`);
    console.log(`peak RSS: ${rss.map(([service, bytes]) => `${service} ${(bytes / 1024 / 1024).toFixed(0)} MiB`).join(', ')}`);

    // Interactive captions while a second scene runs (a quarter of the side; the router's bulk-yield rule holds
    // its tiles back while interactive requests come, so this scene's rate is not the throughput above).
    const busyFile = join(dir, 'scene-busy.tif');
    const busySide = Math.max(tileSize * 4, Math.round(SIZE / 4));
    writeTiledGeoTiff(busyFile, { width: busySide, height: busySide, bands: 3, tileSide: 256, compression: 'deflate', pixels: windowRgb });
    let busyStatus = 'queued';
    const busyScene = runScene(url, busyFile, tileSize, (answer) => (busyStatus = answer));
    const busy = await probe(url, probePng, Number.MAX_SAFE_INTEGER, () => ['done', 'failed', 'cancelled'].includes(busyStatus));
    const busyEnd = await busyScene;
    if (busyEnd !== 'done') throw new Error(`the second scene ended ${busyEnd}`);
    console.log(`interactive caption p50: idle ${p50(idle).toFixed(1)} ms (${idle.length}), during a ${busySide} × ${busySide} scene ${p50(busy).toFixed(1)} ms (${busy.length})`);
    goal('throughput', sceneRate >= 0.9 * singleRate, `${(sceneRate / singleRate).toFixed(2)}× (goal ≥ 0.90×) — scene ${sceneRate.toFixed(2)} ÷ single-image ${singleRate.toFixed(2)} tiles/s`);
    const worst = rss.reduce((a, b) => (b[1] > a[1] ? b : a));
    goal('peak RSS', worst[1] < GIB, `${worst[0]} ${(worst[1] / 1024 / 1024).toFixed(0)} MiB is the largest (goal < 1024 MiB each)`);
    goal('interactive p50', p50(busy) <= 1.5 * p50(idle), `${(p50(busy) / p50(idle)).toFixed(2)}× idle (goal ≤ 1.50×)`);
    console.log(`wall time: ${wallS.toFixed(1)} s for ${SIZE} × ${SIZE} (${total} tiles of ${tileSize} px, tasks ${flags.tasks})`);
  } finally {
    await mesh?.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
