import { IGNORE_LABEL, type LabelMask } from '@rsmoe/region-outputs';
import { coreIndexOf } from './tile-grid';
import type { TileGrid, TileMask } from './scene.types';

/** Longest side of a scene's mosaic mask; larger scenes are mosaicked at a whole number of scene pixels per cell. */
export const MOSAIC_MAX_SIDE = 2048;

/** The scene's label mask: one cell per `scale` × `scale` scene pixels, class indices into `classes`. */
export interface SceneMosaic {
  mask: LabelMask;
  classes: string[];
  /** Scene pixels per mosaic cell along each axis. */
  scale: number;
}

/** Scene pixels per mosaic cell for a width × height scene. */
export function mosaicScale(width: number, height: number): number {
  return Math.max(1, Math.ceil(Math.max(width, height) / MOSAIC_MAX_SIDE));
}

/**
 * Mosaics the tiles' label grids into one scene mask. Every cell takes its label from the tile whose *core*
 * holds the cell's centre (cores split each overlap down the middle, so a tile answers for the part it sees
 * best, away from its edges), read from that tile's grid stretched over the tile (nearest cell). Classes are
 * matched by name into `classes` (index 0 `others`); a tile without a mask (skipped, failed) leaves its core
 * IGNORE_LABEL (255: no answer).
 */
export function mosaicMasks(
  grid: TileGrid,
  width: number,
  height: number,
  requested: readonly string[],
  maskOf: (tileIndex: number) => TileMask | undefined,
): SceneMosaic {
  const classes = ['others', ...requested.filter((name) => name !== 'others')];
  const scale = mosaicScale(width, height);
  const mw = Math.ceil(width / scale);
  const mh = Math.ceil(height / scale);
  const data = new Uint8Array(mw * mh).fill(IGNORE_LABEL);
  const centre = (cell: number, size: number) => Math.min(size - 1, cell * scale + Math.floor(scale / 2));
  const columnOf = Int32Array.from({ length: mw }, (_, mx) => coreIndexOf(grid.coreXs, centre(mx, width)));
  const rowOf = Int32Array.from({ length: mh }, (_, my) => coreIndexOf(grid.coreYs, centre(my, height)));
  const decoded = new Map<number, { mask: TileMask; labels: Uint8Array; lookup: Uint8Array } | null>();
  const tileMask = (index: number) => {
    if (!decoded.has(index)) {
      const mask = maskOf(index);
      if (mask === undefined) decoded.set(index, null);
      else {
        // Each of the tile's class indices → the scene's; unknown names and 255 stay "no answer".
        const lookup = new Uint8Array(256).fill(IGNORE_LABEL);
        mask.classes.forEach((name, i) => {
          const at = classes.indexOf(name);
          if (at >= 0) lookup[i] = at;
        });
        decoded.set(index, { mask, labels: new Uint8Array(Buffer.from(mask.labels, 'base64')), lookup });
      }
    }
    return decoded.get(index) ?? undefined;
  };
  for (let my = 0; my < mh; my++) {
    const row = rowOf[my];
    const sy = centre(my, height);
    for (let mx = 0; mx < mw; mx++) {
      const column = columnOf[mx];
      const entry = tileMask(row * grid.columns + column);
      if (!entry) continue;
      const tileX = grid.xs[column];
      const tileY = grid.ys[row];
      const tileW = Math.min(grid.tileSize, width - tileX);
      const tileH = Math.min(grid.tileSize, height - tileY);
      const sx = centre(mx, width);
      const cx = Math.min(entry.mask.width - 1, Math.floor(((sx - tileX + 0.5) * entry.mask.width) / tileW));
      const cy = Math.min(entry.mask.height - 1, Math.floor(((sy - tileY + 0.5) * entry.mask.height) / tileH));
      data[my * mw + mx] = entry.lookup[entry.labels[cy * entry.mask.width + cx]];
    }
  }
  return { mask: { width: mw, height: mh, data }, classes, scale };
}
