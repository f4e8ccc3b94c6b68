import type { Georeference } from '@rsmoe/geo';

/** The tasks a scene may ask for; each runs on every tile with content. */
export interface SceneTasks {
  /** A caption per tile (every caption expert, fused per tile by the router), fused into a scene caption. */
  caption?: boolean;
  /** The scene class of each tile (image-level expert): a grid. */
  classification?: boolean;
  /** Grounding: one request per phrase per tile; boxes merged across tile borders. */
  grounding?: string[];
  /** Segmentation of these classes per tile; masks mosaicked. */
  segmentation?: string[];
}

/** The task names a client lists (`tasks=caption,grounding`). */
export const SCENE_TASK_NAMES = ['caption', 'classification', 'grounding', 'segmentation'] as const;
export type SceneTaskName = (typeof SCENE_TASK_NAMES)[number];

/** What the scene's first image holds, read from its header. */
export interface RasterInfo {
  width: number;
  height: number;
  /** Samples per pixel. */
  bandCount: number;
  bitsPerSample: number;
  /** `uint`, `int` or `float`. */
  sampleFormat: 'uint' | 'int' | 'float';
  /** TIFF Compression code and its name. */
  compression: { code: number; name: string };
  /** GDAL_NODATA, when set. */
  nodata: number | null;
  /** Internal tiles (a COG) or strips. */
  layout: 'tiled' | 'strips';
}

/** Tiling of a scene: `tileSize` windows every `stride` pixels; the last row and column end at the scene's edge. */
export interface TileGrid {
  tileSize: number;
  overlap: number;
  stride: number;
  columns: number;
  rows: number;
  /** Tile origins along x (columns) and y (rows), in scene pixels. */
  xs: number[];
  ys: number[];
  /** Where each tile's core starts along x / y: the middle of its overlap with the previous tile (columns + 1 / rows + 1 entries, last = the scene's size). */
  coreXs: number[];
  coreYs: number[];
}

/** One tile of the grid. */
export interface Tile {
  /** row × columns + column. */
  index: number;
  column: number;
  row: number;
  x: number;
  y: number;
  width: number;
  height: number;
  /** The part of the scene this tile answers for in mosaics and grids (half of each overlap goes to each side). */
  core: { x1: number; y1: number; x2: number; y2: number };
}

/** Everything a scene job needs, fixed when the scene is accepted. */
export interface SceneSpec {
  sceneId: string;
  createdAtUnixMs: number;
  /** The API key that made it (AUTH_MODE=required): only it may read or cancel it. */
  ownerKeyId?: string;
  /** The uploaded file's name in the scene's directory, and its size. */
  file: { name: string; bytes: number };
  raster: RasterInfo;
  /** The three bands read as R, G, B (0-based; one band repeated for a grey scene). */
  bands: [number, number, number];
  /**
   * For samples other than 8-bit unsigned: per selected band, the values mapped to 0 and 255 (the 2nd and
   * 98th percentiles of a sample of the whole scene), so every tile is stretched alike.
   */
  stretch?: [number, number][];
  grid: TileGrid;
  tasks: SceneTasks;
  /** The scene's georeference; null: none (pixel coordinates). */
  georeference: Georeference | null;
}

/** A scene job's life. */
export type SceneStatus = 'queued' | 'running' | 'stitching' | 'done' | 'failed' | 'cancelled';

/** A box one tile found, in scene pixels. */
export interface TileBox {
  phrase: string;
  box: [number, number, number, number];
}

/** A tile's label grid as the pixel expert wrote it (stretched over the tile). */
export interface TileMask {
  width: number;
  height: number;
  classes: string[];
  /** base64 of width × height class indices (255 = ignore). */
  labels: string;
}

/** A tile task that produced nothing usable (its code as the mesh gave it). */
export interface TileFailure {
  task: string;
  code: string;
  message: string;
}

/** What one tile contributed: stored in Redis as soon as the tile is done, so a restart never redoes it. */
export interface TileRecord {
  index: number;
  /** Skipped without a request: every pixel nodata, or one value throughout. */
  skipped?: 'nodata' | 'uniform';
  caption?: string;
  label?: string;
  boxes?: TileBox[];
  mask?: TileMask;
  failures?: TileFailure[];
}

/** Progress as GET /v1/scenes/{id} reports it. */
export interface SceneProgress {
  tilesTotal: number;
  /** Finished tiles, skipped ones included. */
  tilesDone: number;
  tilesSkipped: number;
  /** Tiles with at least one task that produced nothing (its failures are in the result). */
  tilesFailed: number;
  /** Seconds left at the rate since the driver last (re)started; absent until a tile finished in this run. */
  etaSeconds?: number;
  /** Tiles per second since the driver last (re)started. */
  tilesPerSecond?: number;
}
