/**
 * The coordinate reference systems this library reprojects to WGS 84, by EPSG code. proj4 definitions are
 * generated here rather than fetched, so the list is exactly what the tests cover.
 *
 * ETRS89 and NAD83 are taken as equal to WGS 84 (a null datum shift, EPSG's own "ETRS89 to WGS 84 (1)" and
 * "NAD83 to WGS 84 (1)"): the realisations have drifted apart by about a metre or two since, below what a
 * mask or a box from a model can tell.
 */

/** A CRS a georeference can have: its EPSG code and its EPSG name. */
export interface SupportedCrs {
  epsg: number;
  name: string;
}

/** A supported CRS with its proj4 definition. */
export interface CrsDefinition extends SupportedCrs {
  proj4: string;
}

/** EPSG:4326, the CRS of RFC 7946 GeoJSON. Its GeoTIFF model space is (longitude, latitude) in degrees. */
export const WGS84_EPSG = 4326;

export const WGS84: CrsDefinition = { epsg: WGS84_EPSG, name: 'WGS 84', proj4: '+proj=longlat +datum=WGS84 +no_defs' };

const WEB_MERCATOR: CrsDefinition = {
  epsg: 3857,
  name: 'WGS 84 / Pseudo-Mercator',
  proj4: '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +no_defs',
};

/** A family of UTM CRSs whose EPSG codes run `first + zone - firstZone` for zones firstZone–lastZone. */
interface UtmFamily {
  first: number;
  firstZone: number;
  lastZone: number;
  datumName: string;
  proj4Datum: string;
  south: boolean;
}

const UTM_FAMILIES: readonly UtmFamily[] = [
  { first: 32601, firstZone: 1, lastZone: 60, datumName: 'WGS 84', proj4Datum: '+datum=WGS84', south: false },
  { first: 32701, firstZone: 1, lastZone: 60, datumName: 'WGS 84', proj4Datum: '+datum=WGS84', south: true },
  { first: 25828, firstZone: 28, lastZone: 38, datumName: 'ETRS89', proj4Datum: '+ellps=GRS80 +towgs84=0,0,0,0,0,0,0', south: false },
  { first: 26901, firstZone: 1, lastZone: 23, datumName: 'NAD83', proj4Datum: '+datum=NAD83', south: false },
];

/** The definition of a supported CRS, or undefined for any other code. */
export function crsDefinition(epsg: number): CrsDefinition | undefined {
  if (epsg === WGS84.epsg) return WGS84;
  if (epsg === WEB_MERCATOR.epsg) return WEB_MERCATOR;
  for (const family of UTM_FAMILIES) {
    const zone = epsg - family.first + family.firstZone;
    if (Number.isInteger(zone) && zone >= family.firstZone && zone <= family.lastZone) return utm(epsg, zone, family);
  }
  return undefined;
}

function utm(epsg: number, zone: number, family: UtmFamily): CrsDefinition {
  const hemisphere = family.south ? 'S' : 'N';
  return {
    epsg,
    name: `${family.datumName} / UTM zone ${zone}${hemisphere}`,
    proj4: `+proj=utm +zone=${zone}${family.south ? ' +south' : ''} ${family.proj4Datum} +units=m +no_defs`,
  };
}

/** What the catalogue holds, in words, for messages about a code outside it. */
export const SUPPORTED_CRS_SUMMARY =
  'EPSG:4326, EPSG:3857, WGS 84 / UTM (32601–32660, 32701–32760), ETRS89 / UTM (25828–25838) and NAD83 / UTM (26901–26923)';
