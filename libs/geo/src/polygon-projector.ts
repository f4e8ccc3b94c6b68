import type { Position } from 'geojson';
import { applyAffine } from './affine';
import { WGS84_EPSG } from './crs-catalogue';
import type { Georeference } from './georeference';
import { toWgs84 } from './reproject';
import { densifyRing, finishPolygon } from './rings';

/**
 * Edges are reprojected to WGS 84 in pieces no longer than the image's longer side over this. A straight edge in
 * UTM is a curve in longitude/latitude: drawn straight between its ends, a 10 km edge at 45° N is 2 m (east–west)
 * to 4.5 m (diagonal) off; a sixteenth of it is off by 1/256 of that, under 2 cm.
 */
const PIECES_PER_IMAGE_SIDE = 16;

/** Maps polygons in image pixel coordinates (open rings, exterior first) to GeoJSON polygons. */
export interface PolygonProjector {
  /** In the image's CRS: each position through the affine transform (straight edges stay straight: not densified). */
  native(polygon: readonly (readonly Position[])[]): Position[][];
  /** In WGS 84 [longitude, latitude], long edges densified first unless the image's CRS is WGS 84 itself. */
  wgs84(polygon: readonly (readonly Position[])[]): Position[][];
}

export function polygonProjector(georeference: Georeference): PolygonProjector {
  const { transform, crs, width, height } = georeference;
  const toLonLat = toWgs84(crs.epsg);
  const maxPiece = Math.max(width, height) / PIECES_PER_IMAGE_SIDE;
  // An affine image of longitude/latitude keeps straight edges straight: nothing to add.
  const densify = (ring: readonly Position[]) => (crs.epsg === WGS84_EPSG ? ring : densifyRing(ring, maxPiece));
  return {
    native: (polygon) => finishPolygon(polygon.map((ring) => ring.map((pixel) => applyAffine(transform, pixel)))),
    wgs84: (polygon) => finishPolygon(polygon.map((ring) => densify(ring).map((pixel) => toLonLat(applyAffine(transform, pixel))))),
  };
}
