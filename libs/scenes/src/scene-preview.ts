import sharp from 'sharp';
import { IGNORE_LABEL } from '@rsmoe/region-outputs';
import type { MergedBox } from './box-merge';
import type { SceneMosaic } from './mask-mosaic';
import type { SceneRaster } from './scene-raster';
import type { SceneSpec } from './scene.types';

/** Longest side of a scene's preview PNG. */
export const PREVIEW_MAX_SIDE = 1024;

/** Overlay colours: mask class i (from 1) and grounding phrase j take PALETTE[(i − 1) % n] / PALETTE[j % n]. */
const PALETTE: readonly [number, number, number][] = [
  [230, 25, 75],
  [60, 180, 75],
  [255, 225, 25],
  [0, 130, 200],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [210, 245, 60],
  [250, 190, 212],
  [0, 128, 128],
  [220, 190, 255],
  [170, 110, 40],
  [255, 250, 200],
];

/**
 * A downsampled preview of the scene (at most PREVIEW_MAX_SIDE on its longer side, nearest pixel) with the
 * answer drawn on it: mask classes tinted (45 %), classification tile cores outlined in white, grounding
 * boxes outlined in their phrase's colour. The scene is read in horizontal bands, never whole.
 */
export async function renderScenePreview(
  raster: SceneRaster,
  spec: SceneSpec,
  overlays: { mosaic?: SceneMosaic; boxes?: readonly MergedBox[] },
): Promise<Buffer> {
  const { width, height } = spec.raster;
  const step = Math.max(1, Math.ceil(Math.max(width, height) / PREVIEW_MAX_SIDE));
  const pw = Math.ceil(width / step);
  const ph = Math.ceil(height / step);
  const rgb = new Uint8Array(pw * ph * 3);
  const rowsPerBand = Math.max(1, Math.floor(256 / step));
  for (let py0 = 0; py0 < ph; py0 += rowsPerBand) {
    const py1 = Math.min(ph, py0 + rowsPerBand);
    const y0 = py0 * step;
    const y1 = Math.min(height, (py1 - 1) * step + 1);
    const { rgb: band } = await raster.readWindow({ x: 0, y: y0, width, height: y1 - y0 }, spec.bands, spec.stretch);
    for (let py = py0; py < py1; py++) {
      const sy = py * step - y0;
      for (let px = 0; px < pw; px++) {
        const from = (sy * width + px * step) * 3;
        const to = (py * pw + px) * 3;
        rgb[to] = band[from];
        rgb[to + 1] = band[from + 1];
        rgb[to + 2] = band[from + 2];
      }
    }
  }
  const { mosaic } = overlays;
  if (mosaic) {
    for (let py = 0; py < ph; py++) {
      const my = Math.min(mosaic.mask.height - 1, Math.floor((py * step) / mosaic.scale));
      for (let px = 0; px < pw; px++) {
        const mx = Math.min(mosaic.mask.width - 1, Math.floor((px * step) / mosaic.scale));
        const label = mosaic.mask.data[my * mosaic.mask.width + mx];
        if (label === 0 || label === IGNORE_LABEL) continue;
        const colour = PALETTE[(label - 1) % PALETTE.length];
        const at = (py * pw + px) * 3;
        for (let c = 0; c < 3; c++) rgb[at + c] = Math.round(rgb[at + c] * 0.55 + colour[c] * 0.45);
      }
    }
  }
  const rect = (x1: number, y1: number, x2: number, y2: number, colour: readonly [number, number, number], thickness: number): void => {
    const [a, b, c, d] = [x1, y1, x2, y2].map((v, i) => Math.max(0, Math.min((i % 2 === 0 ? pw : ph) - 1, Math.round(v / step))));
    const put = (x: number, y: number): void => {
      const at = (y * pw + x) * 3;
      rgb[at] = colour[0];
      rgb[at + 1] = colour[1];
      rgb[at + 2] = colour[2];
    };
    for (let t = 0; t < thickness; t++) {
      for (let x = a; x <= c; x++) {
        put(x, Math.min(ph - 1, b + t));
        put(x, Math.max(0, d - t));
      }
      for (let y = b; y <= d; y++) {
        put(Math.min(pw - 1, a + t), y);
        put(Math.max(0, c - t), y);
      }
    }
  };
  if (spec.tasks.classification) {
    for (let row = 0; row < spec.grid.rows; row++) {
      for (let column = 0; column < spec.grid.columns; column++) {
        rect(spec.grid.coreXs[column], spec.grid.coreYs[row], spec.grid.coreXs[column + 1], spec.grid.coreYs[row + 1], [255, 255, 255], 1);
      }
    }
  }
  const phrases = spec.tasks.grounding ?? [];
  for (const box of overlays.boxes ?? []) rect(box.box[0], box.box[1], box.box[2], box.box[3], PALETTE[Math.max(0, phrases.indexOf(box.phrase)) % PALETTE.length], 2);
  return sharp(rgb, { raw: { width: pw, height: ph, channels: 3 } }).png().toBuffer();
}
