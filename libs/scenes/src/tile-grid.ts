import { SCENE_ERROR_CODES, SceneInputError } from './scene-errors';
import type { Tile, TileGrid } from './scene.types';

/** Origins along one axis: every `stride`, the last moved back so that it ends at the edge. */
function origins(size: number, tileSize: number, stride: number): number[] {
  if (size <= tileSize) return [0];
  const count = Math.ceil((size - tileSize) / stride) + 1;
  return Array.from({ length: count }, (_, i) => Math.min(i * stride, size - tileSize));
}

/** Core boundaries: the middle of each overlap (whole pixels), 0 first and `size` last. */
function cores(xs: readonly number[], size: number, tileSize: number): number[] {
  const bounds = [0];
  for (let i = 1; i < xs.length; i++) bounds.push(Math.round((xs[i] + Math.min(size, xs[i - 1] + tileSize)) / 2));
  bounds.push(size);
  return bounds;
}

/**
 * Tiles of `tileSize` every `tileSize − overlap` pixels over a width × height scene; the last tile of each row
 * and column ends at the scene's edge (so it may overlap more), and a scene smaller than a tile is one tile.
 * Throws SceneInputError (400 invalid_field) for a tile size under 16 or an overlap of half a tile or more.
 */
export function planTileGrid(width: number, height: number, tileSize: number, overlap: number): TileGrid {
  if (!Number.isInteger(tileSize) || tileSize < 16 || tileSize > 4096) {
    throw new SceneInputError(400, SCENE_ERROR_CODES.invalidField, `tileSize: an integer in [16, 4096], got ${tileSize}`);
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap * 2 >= tileSize) {
    throw new SceneInputError(400, SCENE_ERROR_CODES.invalidField, `overlap: an integer in [0, tileSize / 2), got ${overlap} for tileSize ${tileSize}`);
  }
  const stride = tileSize - overlap;
  const xs = origins(width, tileSize, stride);
  const ys = origins(height, tileSize, stride);
  return { tileSize, overlap, stride, columns: xs.length, rows: ys.length, xs, ys, coreXs: cores(xs, width, tileSize), coreYs: cores(ys, height, tileSize) };
}

export function tileCount(grid: TileGrid): number {
  return grid.columns * grid.rows;
}

/** Tile `index` of the grid (row-major). */
export function tileAt(grid: TileGrid, index: number, width: number, height: number): Tile {
  const column = index % grid.columns;
  const row = Math.floor(index / grid.columns);
  const x = grid.xs[column];
  const y = grid.ys[row];
  return {
    index,
    column,
    row,
    x,
    y,
    width: Math.min(grid.tileSize, width - x),
    height: Math.min(grid.tileSize, height - y),
    core: { x1: grid.coreXs[column], y1: grid.coreYs[row], x2: grid.coreXs[column + 1], y2: grid.coreYs[row + 1] },
  };
}

/** The column (or row) whose core holds scene coordinate `v` along one axis, by binary search over the core bounds. */
export function coreIndexOf(bounds: readonly number[], v: number): number {
  let lo = 0;
  let hi = bounds.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (bounds[mid] <= v) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
