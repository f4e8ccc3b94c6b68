import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GRS80_ELLIPSOID, utmToLonLat, webMercatorToLonLat } from '../test-support/transverse-mercator';
import { ReprojectionError, UnsupportedCrsError } from './errors';
import { toWgs84 } from './reproject';

/** 1e-7° is about a centimetre: the Krüger series here is good to well under that, a wrong zone is off by km. */
const DEGREES = 1e-7;

/** Longitudes compared modulo 360: proj4 wraps them into ±180, the series does not. */
function expectLonLat(actual: number[], expected: number[], tolerance = DEGREES): void {
  expect(Math.abs(((actual[0] - expected[0] + 540) % 360) - 180)).toBeLessThanOrEqual(tolerance);
  expect(Math.abs(actual[1] - expected[1])).toBeLessThanOrEqual(tolerance);
}

describe('toWgs84', () => {
  it('passes EPSG:4326 positions through exactly', () => {
    expect(toWgs84(4326)([12.345678901234, -45.6789])).toEqual([12.345678901234, -45.6789]);
  });

  it('puts a UTM zone’s false origin on its central meridian at the equator', () => {
    expectLonLat(toWgs84(32633)([500_000, 0]), [15, 0], 1e-12);
    expectLonLat(toWgs84(32601)([500_000, 0]), [-177, 0], 1e-12);
    expectLonLat(toWgs84(32760)([500_000, 10_000_000]), [177, 0], 1e-12);
    expectLonLat(toWgs84(26910)([500_000, 0]), [-123, 0], 1e-12);
  });

  it('reads southern zones with their 10 000 km false northing', () => {
    const [, lat] = toWgs84(32723)([500_000, 7_000_000]);
    expect(lat).toBeLessThan(-26);
    expect(lat).toBeGreaterThan(-28);
  });

  it('agrees with the Web Mercator formula', () => {
    expectLonLat(toWgs84(3857)([1_000_000, 7_000_000]), webMercatorToLonLat(1_000_000, 7_000_000), 1e-9);
    expectLonLat(toWgs84(3857)([-20_037_508.342789244, 0]), [-180, 0], 1e-9);
  });

  it('throws named errors for a code outside the catalogue and a position with no result', () => {
    expect(() => toWgs84(2154)).toThrow(UnsupportedCrsError);
    expect(() => toWgs84(32633)([1e9, 1e9])).toThrow(ReprojectionError);
  });
});

const zone = fc.integer({ min: 1, max: 60 });
const easting = fc.double({ min: 200_000, max: 800_000, noNaN: true });
const northNorthing = fc.double({ min: 0, max: 9_300_000, noNaN: true });
const southNorthing = fc.double({ min: 1_100_000, max: 10_000_000, noNaN: true });

describe('toWgs84 against an independent transverse Mercator (Krüger series)', () => {
  it('WGS 84 / UTM north and south', () => {
    fc.assert(
      fc.property(zone, easting, northNorthing, southNorthing, (z, e, nNorth, nSouth) => {
        expectLonLat(toWgs84(32600 + z)([e, nNorth]), utmToLonLat(e, nNorth, z, false));
        expectLonLat(toWgs84(32700 + z)([e, nSouth]), utmToLonLat(e, nSouth, z, true));
      }),
    );
  });

  it('ETRS89 and NAD83 / UTM (GRS 80, no datum shift)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 28, max: 38 }), fc.integer({ min: 1, max: 23 }), easting, northNorthing, (etrsZone, nadZone, e, n) => {
        expectLonLat(toWgs84(25800 + etrsZone)([e, n]), utmToLonLat(e, n, etrsZone, false, GRS80_ELLIPSOID));
        expectLonLat(toWgs84(26900 + nadZone)([e, n]), utmToLonLat(e, n, nadZone, false, GRS80_ELLIPSOID));
      }),
    );
  });
});
