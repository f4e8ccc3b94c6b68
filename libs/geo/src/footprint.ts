import type { Position } from 'geojson';
import { applyAffine } from './affine';
import { unsupportedGeoreference, type Georeference, type UnsupportedGeoreference } from './georeference';
import { ReprojectionError } from './errors';
import { toWgs84 } from './reproject';
import { densifyRing } from './rings';

/** Points along each side of the image's outline when its footprint is checked. */
const FOOTPRINT_POINTS_PER_SIDE = 32;

/**
 * Checks that the image's outline, reprojected, is something RFC 7946 can hold: finite, within longitude ±180 and
 * latitude ±90, and not wrapping across the antimeridian (two neighbouring outline points more than 180° of
 * longitude apart: proj4 wraps longitudes into ±180). Whatever lies inside the image then reprojects cleanly too.
 */
export function checkFootprint(georeference: Georeference): UnsupportedGeoreference | undefined {
  const { width, height, transform, crs } = georeference;
  const outline = densifyRing(
    [
      [0, 0],
      [width, 0],
      [width, height],
      [0, height],
    ],
    Math.max(width, height) / FOOTPRINT_POINTS_PER_SIDE,
  );
  const convert = toWgs84(crs.epsg);
  let lonLat: Position[];
  try {
    lonLat = outline.map((pixel) => convert(applyAffine(transform, pixel)));
  } catch (error) {
    if (!(error instanceof ReprojectionError)) throw error;
    return unsupportedGeoreference('outside-wgs84', `the image's outline leaves ${crs.name}: ${error.message}`, crs.epsg);
  }
  const outside = lonLat.find(([lon, lat]) => Math.abs(lon) > 180 || Math.abs(lat) > 90);
  if (outside !== undefined) {
    return unsupportedGeoreference(
      'outside-wgs84',
      `the image's outline reaches [${outside.join(', ')}], outside longitude ±180 / latitude ±90`,
      crs.epsg,
    );
  }
  const wraps = lonLat.some(([lon], i) => Math.abs(lon - lonLat[(i + 1) % lonLat.length][0]) > 180);
  if (wraps) {
    return unsupportedGeoreference('crosses-antimeridian', `the image crosses the antimeridian (longitude ±180)`, crs.epsg);
  }
  return undefined;
}
