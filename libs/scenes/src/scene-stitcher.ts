import { boxesToFeatureCollection, maskToFeatureCollection, maskToPixelPolygons, type Georeference } from '@rsmoe/geo';
import { classAreaFractions, encodeLabelMaskPng } from '@rsmoe/region-outputs';
import type { Feature, FeatureCollection, Geometry, Polygon } from 'geojson';
import { mergeTileBoxes, type MergedBox } from './box-merge';
import { fuseSceneCaption, type SceneCaption } from './caption-fusion';
import { mosaicMasks, type SceneMosaic } from './mask-mosaic';
import type { SceneSpec, TileFailure, TileRecord } from './scene.types';
import { tileAt, tileCount } from './tile-grid';

/** Most tile failures listed in a result (all are counted). */
export const MAX_LISTED_FAILURES = 100;

/** The message of a scene without georeferencing. */
export const PIXEL_COORDINATES_MESSAGE =
  'the scene has no georeferencing: every coordinate is in scene pixels (x right, y down, 0, 0 = the top-left corner of the top-left pixel), not longitude/latitude';

/** Properties of the features of a scene's GeoJSON. */
export type SceneFeatureProperties =
  | { kind: 'box'; phrase: string; votes: number; truncated: boolean }
  | { kind: 'mask'; class: string; index: number }
  | { kind: 'tile-class'; label: string; column: number; row: number };

/** What GET /v1/scenes/{id} answers once the scene is done. */
export interface SceneResult {
  sceneId: string;
  width: number;
  height: number;
  grid: { tileSize: number; overlap: number; columns: number; rows: number };
  tiles: { total: number; done: number; skippedNodata: number; skippedUniform: number; failed: number };
  /** `georeferenced`: `geojson` is EPSG:4326 (lon/lat) and `nativeCrs` the scene's own CRS; `none`: pixels. */
  georeference: { status: 'georeferenced'; epsg: number; crs: string; transform: Georeference['transform'] } | { status: 'none'; message: string };
  caption?: SceneCaption;
  classification?: { columns: number; rows: number; labels: (string | null)[][]; shares: { label: string; share: number }[] };
  grounding?: { phrases: string[]; boxes: { phrase: string; boxPx: [number, number, number, number]; votes: number; truncated: boolean }[]; tileBoxes: number };
  segmentation?: {
    classes: { index: number; name: string; areaFraction: number }[];
    /** The mosaic: one cell per `scale` × `scale` scene pixels; PNG base64, pixel = class index, 255 = no answer. */
    mask: { width: number; height: number; scale: number; png: string };
  };
  /** Every feature (boxes, mask classes, tile classes): EPSG:4326 lon/lat when georeferenced, else pixels. */
  geojson: FeatureCollection<Geometry | null, SceneFeatureProperties>;
  nativeCrs?: { epsg: number; featureCollection: FeatureCollection<Geometry | null, SceneFeatureProperties> };
  failures: { count: number; listed: (TileFailure & { tile: number })[] };
}

/** The scene's stitched parts, before the GeoJSON and preview are made from them. */
export interface StitchedScene {
  result: SceneResult;
  mosaic?: SceneMosaic;
  boxes: MergedBox[];
}

/** A tile's core as a pixel box (for the classification grid's features). */
function coreBox(spec: SceneSpec, index: number): { unit: 'px'; x1: number; y1: number; x2: number; y2: number } {
  const { core } = tileAt(spec.grid, index, spec.raster.width, spec.raster.height);
  return { unit: 'px', ...core };
}

function pixelPolygon(box: { x1: number; y1: number; x2: number; y2: number }): Polygon {
  return { type: 'Polygon', coordinates: [[[box.x1, box.y1], [box.x2, box.y1], [box.x2, box.y2], [box.x1, box.y2], [box.x1, box.y1]]] };
}

/**
 * Stitches a scene from its tile records: grounding boxes merged across tile borders (mergeTileBoxes), masks
 * mosaicked (mosaicMasks), classification as a grid of tile-core labels, a scene caption fused from tile
 * captions (fuseSceneCaption); then every feature as GeoJSON through libs/geo (EPSG:4326 and the scene's CRS),
 * or in pixels for a scene without georeferencing.
 */
export async function stitchScene(spec: SceneSpec, records: ReadonlyMap<number, TileRecord>): Promise<StitchedScene> {
  const { width, height } = spec.raster;
  const total = tileCount(spec.grid);
  const all = [...records.values()];
  const failures = all.flatMap((record) => (record.failures ?? []).map((failure) => ({ ...failure, tile: record.index })));
  const result: SceneResult = {
    sceneId: spec.sceneId,
    width,
    height,
    grid: { tileSize: spec.grid.tileSize, overlap: spec.grid.overlap, columns: spec.grid.columns, rows: spec.grid.rows },
    tiles: {
      total,
      done: records.size,
      skippedNodata: all.filter((r) => r.skipped === 'nodata').length,
      skippedUniform: all.filter((r) => r.skipped === 'uniform').length,
      failed: all.filter((r) => (r.failures ?? []).length > 0).length,
    },
    georeference: spec.georeference
      ? { status: 'georeferenced', epsg: spec.georeference.crs.epsg, crs: spec.georeference.crs.name, transform: spec.georeference.transform }
      : { status: 'none', message: PIXEL_COORDINATES_MESSAGE },
    geojson: { type: 'FeatureCollection', features: [] },
    failures: { count: failures.length, listed: failures.slice(0, MAX_LISTED_FAILURES) },
  };
  const wgs84: Feature<Geometry | null, SceneFeatureProperties>[] = [];
  const native: Feature<Geometry | null, SceneFeatureProperties>[] = [];
  const geo = spec.georeference;

  let shares: { label: string; share: number }[] | undefined;
  if (spec.tasks.classification) {
    const labels = Array.from({ length: spec.grid.rows }, (_, row) =>
      Array.from({ length: spec.grid.columns }, (_, column) => records.get(row * spec.grid.columns + column)?.label ?? null),
    );
    const counts = new Map<string, number>();
    for (const label of labels.flat()) if (label !== null) counts.set(label, (counts.get(label) ?? 0) + 1);
    const labelled = [...counts.values()].reduce((a, b) => a + b, 0);
    shares = [...counts].map(([label, count]) => ({ label, share: count / labelled })).sort((a, b) => b.share - a.share);
    result.classification = { columns: spec.grid.columns, rows: spec.grid.rows, labels, shares };
    const cells = labels.flatMap((row, r) => row.flatMap((label, c) => (label === null ? [] : [{ label, column: c, row: r, box: coreBox(spec, r * spec.grid.columns + c) }])));
    const properties = cells.map(({ label, column, row }): SceneFeatureProperties => ({ kind: 'tile-class', label, column, row }));
    if (geo) {
      const collections = boxesToFeatureCollection(cells.map((cell) => cell.box), geo, properties);
      wgs84.push(...collections.wgs84.features);
      native.push(...collections.nativeCrs.featureCollection.features);
    } else {
      cells.forEach((cell, i) => wgs84.push({ type: 'Feature', geometry: pixelPolygon(cell.box), properties: properties[i] }));
    }
  }

  if (spec.tasks.caption) {
    const captions = all.filter((record) => record.caption !== undefined && record.caption !== '').sort((a, b) => a.index - b.index).map((record) => record.caption as string);
    result.caption = fuseSceneCaption(captions, shares);
  }

  let boxes: MergedBox[] = [];
  if (spec.tasks.grounding) {
    const found = all.flatMap((record) => (record.boxes ?? []).map((box) => ({ box, tile: tileAt(spec.grid, record.index, width, height) })));
    boxes = mergeTileBoxes(found, width, height);
    result.grounding = {
      phrases: spec.tasks.grounding,
      boxes: boxes.map((box) => ({ phrase: box.phrase, boxPx: box.box, votes: box.votes, truncated: box.truncated })),
      tileBoxes: found.length,
    };
    const properties = boxes.map((box): SceneFeatureProperties => ({ kind: 'box', phrase: box.phrase, votes: box.votes, truncated: box.truncated }));
    const pixelBoxes = boxes.map(({ box: [x1, y1, x2, y2] }) => ({ unit: 'px' as const, x1, y1, x2, y2 }));
    if (geo) {
      const collections = boxesToFeatureCollection(pixelBoxes, geo, properties);
      wgs84.push(...collections.wgs84.features);
      native.push(...collections.nativeCrs.featureCollection.features);
    } else {
      pixelBoxes.forEach((box, i) => wgs84.push({ type: 'Feature', geometry: pixelPolygon(box), properties: properties[i] }));
    }
  }

  let mosaic: SceneMosaic | undefined;
  if (spec.tasks.segmentation) {
    mosaic = mosaicMasks(spec.grid, width, height, spec.tasks.segmentation, (index) => records.get(index)?.mask);
    const areas = classAreaFractions(mosaic.mask, mosaic.classes);
    const cells = mosaic.mask.width * mosaic.mask.height;
    result.segmentation = {
      classes: mosaic.classes.map((name, index) => ({ index, name, areaFraction: areas[index].pixels / cells })),
      mask: { width: mosaic.mask.width, height: mosaic.mask.height, scale: mosaic.scale, png: (await encodeLabelMaskPng(mosaic.mask)).toString('base64') },
    };
    if (geo) {
      // The mosaic covers whole cells: its georeference is the scene's, stretched to width × scale.
      const covered = { ...geo, width: mosaic.mask.width * mosaic.scale, height: mosaic.mask.height * mosaic.scale };
      const collections = maskToFeatureCollection(mosaic.mask, mosaic.classes, covered);
      wgs84.push(...collections.wgs84.features.map((f) => ({ ...f, properties: { kind: 'mask' as const, ...f.properties } })));
      native.push(...collections.nativeCrs.featureCollection.features.map((f) => ({ ...f, properties: { kind: 'mask' as const, ...f.properties } })));
    } else {
      const s = mosaic.scale;
      for (const feature of maskToPixelPolygons(mosaic.mask, mosaic.classes).features) {
        const coordinates = feature.geometry.coordinates.map((polygon) => polygon.map((ring) => ring.map(([x, y]) => [x * s, y * s])));
        wgs84.push({ type: 'Feature', geometry: { type: 'MultiPolygon', coordinates }, properties: { kind: 'mask', ...feature.properties } });
      }
    }
  }

  result.geojson = { type: 'FeatureCollection', features: wgs84 };
  if (geo) result.nativeCrs = { epsg: geo.crs.epsg, featureCollection: { type: 'FeatureCollection', features: native } };
  return { result, ...(mosaic ? { mosaic } : {}), boxes };
}
