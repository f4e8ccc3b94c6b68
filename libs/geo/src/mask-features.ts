import type { FeatureCollection, MultiPolygon, Position } from 'geojson';
import type { LabelMask } from '@rsmoe/region-outputs';
import type { Georeference } from './georeference';
import type { GeoFeatureCollections, MaskClassProperties } from './geojson-output';
import { traceClasses } from './mask-tracing';
import { polygonProjector } from './polygon-projector';
import { finishPolygon } from './rings';

/**
 * A label mask as polygons in its own pixel coordinates (x right, y down; not RFC 7946 longitude/latitude), for
 * overlays on the image: one MultiPolygon Feature per class present, in class-index order, skipping background
 * (0, `others`) and the ignore label (255), with properties `{ class, index }`. Polygons follow pixel edges
 * (see traceClasses), holes stay holes and rings are closed; exteriors have positive signed area and holes
 * negative in the coordinates as written, so exteriors run clockwise on a y-down screen. Throws
 * InvalidMaskShapeError or LabelOutOfRangeError (from @rsmoe/region-outputs) for a malformed mask.
 */
export function maskToPixelPolygons(
  labelMask: LabelMask,
  classes: readonly string[],
): FeatureCollection<MultiPolygon, MaskClassProperties> {
  return {
    type: 'FeatureCollection',
    features: traceClasses(labelMask, classes).map(({ index, class: name, polygons }) =>
      classFeature(polygons.map(finishPolygon), name, index),
    ),
  };
}

/**
 * maskToPixelPolygons placed on the Earth. The mask covers the whole image: a grid smaller than the image is
 * stretched over it (cell i spans image columns i·width/mask.width to (i + 1)·width/mask.width), so pass the label
 * grid a model wrote rather than the grid resized to the image: the same outlines within a pixel, far fewer
 * pixels to trace. Polygons go through the georeference's transform to the native CRS and, edges densified, to
 * WGS 84, and are oriented there (RFC 7946: exteriors counter-clockwise, holes clockwise).
 */
export function maskToFeatureCollection(
  labelMask: LabelMask,
  classes: readonly string[],
  georeference: Georeference,
): GeoFeatureCollections<MultiPolygon, MaskClassProperties> {
  const traced = traceClasses(labelMask, classes);
  const project = polygonProjector(georeference);
  const scaleX = georeference.width / labelMask.width;
  const scaleY = georeference.height / labelMask.height;
  const toImage = (polygon: Position[][]) => polygon.map((ring) => ring.map(([x, y]) => [x * scaleX, y * scaleY]));
  const wgs84 = traced.map(({ index, class: name, polygons }) =>
    classFeature(polygons.map((polygon) => project.wgs84(toImage(polygon))), name, index),
  );
  const native = traced.map(({ index, class: name, polygons }) =>
    classFeature(polygons.map((polygon) => project.native(toImage(polygon))), name, index),
  );
  return {
    wgs84: { type: 'FeatureCollection', features: wgs84 },
    nativeCrs: { epsg: georeference.crs.epsg, featureCollection: { type: 'FeatureCollection', features: native } },
  };
}

function classFeature(coordinates: Position[][][], name: string, index: number) {
  return {
    type: 'Feature' as const,
    geometry: { type: 'MultiPolygon' as const, coordinates },
    properties: { class: name, index },
  };
}
