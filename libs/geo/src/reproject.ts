import type { Position } from 'geojson';
import proj4 from 'proj4';
import { crsDefinition, WGS84, WGS84_EPSG } from './crs-catalogue';
import { ReprojectionError, UnsupportedCrsError } from './errors';

/** Maps one position of a CRS to WGS 84 [longitude, latitude] in degrees. */
export type ToWgs84 = (position: Position) => Position;

const converters = new Map<number, ToWgs84>();

/**
 * The converter from a supported CRS to WGS 84 (made once per code). EPSG:4326 is copied, not passed through
 * proj4, so its positions come out exactly as the GeoTIFF placed them. Throws UnsupportedCrsError for a code
 * outside the catalogue and, when used, ReprojectionError for a position with no finite result.
 */
export function toWgs84(epsg: number): ToWgs84 {
  let convert = converters.get(epsg);
  if (convert === undefined) {
    convert = makeConverter(epsg);
    converters.set(epsg, convert);
  }
  return convert;
}

function makeConverter(epsg: number): ToWgs84 {
  const definition = crsDefinition(epsg);
  if (definition === undefined) throw new UnsupportedCrsError(epsg);
  if (epsg === WGS84_EPSG) return ([x, y]) => [x, y];
  const converter = proj4(definition.proj4, WGS84.proj4);
  return (position) => {
    const [lon, lat] = converter.forward([position[0], position[1]]);
    if (!Number.isFinite(lon) || !Number.isFinite(lat)) throw new ReprojectionError(epsg, position);
    return [lon, lat];
  };
}
