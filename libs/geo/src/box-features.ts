import type { Feature, GeoJsonProperties, Polygon, Position } from 'geojson';
import type { PixelBox } from '@rsmoe/region-outputs';
import { InvalidPixelBoxError, PropertiesCountError } from './errors';
import type { Georeference } from './georeference';
import type { GeoFeatureCollections } from './geojson-output';
import { polygonProjector } from './polygon-projector';

/**
 * Boxes in image pixels as GeoJSON Polygons, one Feature per box in the same order, with `properties[i]` as box
 * i's properties: each box's four corners through the georeference's transform (edges densified before
 * reprojection so that a box stays accurate in WGS 84). A box may reach outside the image; corners are put in
 * order. A box with no area (x1 = x2 or y1 = y2) gets `geometry: null`, which keeps features aligned with boxes.
 * Throws InvalidPixelBoxError for a corner that is not finite and PropertiesCountError unless there is one
 * properties entry per box.
 */
export function boxesToFeatureCollection<P extends GeoJsonProperties>(
  boxesPx: readonly PixelBox[],
  georeference: Georeference,
  properties: readonly P[],
): GeoFeatureCollections<Polygon | null, P> {
  if (properties.length !== boxesPx.length) throw new PropertiesCountError(boxesPx.length, properties.length);
  const project = polygonProjector(georeference);
  const wgs84: Feature<Polygon | null, P>[] = [];
  const native: Feature<Polygon | null, P>[] = [];
  boxesPx.forEach((box, i) => {
    const ring = boxRing(box);
    wgs84.push(polygonFeature(ring && project.wgs84([ring]), properties[i]));
    native.push(polygonFeature(ring && project.native([ring]), properties[i]));
  });
  return {
    wgs84: { type: 'FeatureCollection', features: wgs84 },
    nativeCrs: { epsg: georeference.crs.epsg, featureCollection: { type: 'FeatureCollection', features: native } },
  };
}

/** The box's corners as an open ring, or undefined for a box with no area. */
function boxRing(box: PixelBox): Position[] | undefined {
  const { x1, y1, x2, y2 } = box;
  if (![x1, y1, x2, y2].every(Number.isFinite)) {
    throw new InvalidPixelBoxError(`box corners must be finite, got (${x1}, ${y1}, ${x2}, ${y2})`);
  }
  const [left, right] = [Math.min(x1, x2), Math.max(x1, x2)];
  const [top, bottom] = [Math.min(y1, y2), Math.max(y1, y2)];
  if (left === right || top === bottom) return undefined;
  return [
    [left, top],
    [right, top],
    [right, bottom],
    [left, bottom],
  ];
}

function polygonFeature<P extends GeoJsonProperties>(coordinates: Position[][] | undefined, properties: P): Feature<Polygon | null, P> {
  return { type: 'Feature', geometry: coordinates === undefined ? null : { type: 'Polygon', coordinates }, properties };
}
