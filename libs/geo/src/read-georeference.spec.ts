import { describe, expect, it } from 'vitest';
import { geoTiff, plainTiff, png } from '../test-support/geotiff-fixtures';
import { utmToLonLat } from '../test-support/transverse-mercator';
import { applyAffine } from './affine';
import { readGeoreference } from './read-georeference';
import { toWgs84 } from './reproject';

describe('readGeoreference', () => {
  it('reads an EPSG:4326 GeoTIFF written by geotiff', async () => {
    const bytes = geoTiff(8, 4, {
      ModelTiepoint: [0, 0, 0, -0.01, 51.48, 0],
      ModelPixelScale: [0.0025, 0.0025, 0],
      GTModelTypeGeoKey: 2,
      GeographicTypeGeoKey: 4326,
    });
    const reading = await readGeoreference(bytes);
    expect(reading).toMatchObject({ kind: 'georeferenced', width: 8, height: 4, crs: { epsg: 4326 }, rasterType: 'pixel-is-area' });
    if (reading?.kind !== 'georeferenced') return;
    expect(applyAffine(reading.transform, [4, 2])).toEqual([-0.01 + 4 * 0.0025, 51.48 - 2 * 0.0025]);
  });

  it('reads a UTM GeoTIFF: the pixel corner on (500 000 E, 0 N) lies on zone 33’s central meridian, 15°E, at the equator', async () => {
    const bytes = geoTiff(6, 4, {
      ModelTiepoint: [0, 0, 0, 499_990, 10, 0],
      ModelPixelScale: [10, 10, 0],
      GTModelTypeGeoKey: 1,
      ProjectedCSTypeGeoKey: 32633,
      GTRasterTypeGeoKey: 1,
    });
    const reading = await readGeoreference(bytes);
    if (reading?.kind !== 'georeferenced') throw new Error(JSON.stringify(reading));
    expect(reading.crs).toEqual({ epsg: 32633, name: 'WGS 84 / UTM zone 33N' });
    const toLonLat = (pixel: number[]) => toWgs84(32633)(applyAffine(reading.transform, pixel));
    const [lon, lat] = toLonLat([1, 1]);
    expect(lon).toBeCloseTo(15, 12);
    expect(lat).toBeCloseTo(0, 12);
    const [farLon, farLat] = toLonLat([6, 0]);
    const [expectedLon, expectedLat] = utmToLonLat(500_050, 10, 33, false);
    expect(Math.abs(farLon - expectedLon)).toBeLessThan(1e-9);
    expect(Math.abs(farLat - expectedLat)).toBeLessThan(1e-9);
  });

  it('reads pixel-is-point from a ModelTransformation GeoTIFF in a southern zone', async () => {
    const bytes = geoTiff(4, 4, {
      ModelTransformation: [30, 0, 0, 300_000, 0, -30, 0, 7_000_000, 0, 0, 0, 0, 0, 0, 0, 1],
      GTModelTypeGeoKey: 1,
      ProjectedCSTypeGeoKey: 32723,
      GTRasterTypeGeoKey: 2,
    });
    const reading = await readGeoreference(bytes);
    expect(reading).toMatchObject({ kind: 'georeferenced', rasterType: 'pixel-is-point', crs: { name: 'WGS 84 / UTM zone 23S' } });
    if (reading?.kind !== 'georeferenced') return;
    expect(applyAffine(reading.transform, [0.5, 0.5])).toEqual([300_000, 7_000_000]);
  });

  it('says why GeoJSON is missing for a user-defined or unsupported CRS, without throwing', async () => {
    const projected = (code: number, tiepoint: number[]) =>
      geoTiff(4, 4, { ModelTiepoint: tiepoint, ModelPixelScale: [1, 1, 0], GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: code });
    const userDefined = projected(32767, [0, 0, 0, 1000, 2000, 0]);
    expect(await readGeoreference(userDefined)).toMatchObject({ kind: 'unsupported', reason: 'user-defined-crs', epsg: 32767 });
    const lambert93 = projected(2154, [0, 0, 0, 700_000, 6_600_000, 0]);
    expect(await readGeoreference(lambert93)).toMatchObject({ kind: 'unsupported', reason: 'unsupported-crs', epsg: 2154 });
    const gcps = geoTiff(4, 4, { ModelTiepoint: [0, 0, 0, 10, 50, 0, 4, 4, 0, 10.1, 49.9, 0], GeographicTypeGeoKey: 4326 });
    expect(await readGeoreference(gcps)).toMatchObject({ kind: 'unsupported', reason: 'ground-control-points' });
  });

  it('gives undefined for a TIFF without georeferencing, a PNG and bytes that are no image', async () => {
    expect(await readGeoreference(await plainTiff())).toBeUndefined();
    expect(await readGeoreference(await png())).toBeUndefined();
    expect(await readGeoreference(new Uint8Array())).toBeUndefined();
    expect(await readGeoreference(new TextEncoder().encode('not an image'))).toBeUndefined();
  });

  it('says a TIFF whose tags cannot be read is unreadable', async () => {
    const truncated = Uint8Array.from([0x49, 0x49, 42, 0, 0xff, 0xff, 0xff, 0x7f]);
    expect(await readGeoreference(truncated)).toMatchObject({ kind: 'unsupported', reason: 'unreadable' });
  });

  it('reads a view into a larger buffer', async () => {
    const bytes = geoTiff(4, 4, { ModelTiepoint: [0, 0, 0, 10, 50, 0], ModelPixelScale: [0.1, 0.1, 0], GeographicTypeGeoKey: 4326 });
    const padded = new Uint8Array(bytes.length + 16);
    padded.set(bytes, 7);
    expect(await readGeoreference(padded.subarray(7, 7 + bytes.length))).toEqual(await readGeoreference(bytes));
  });
});
