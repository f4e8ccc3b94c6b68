import { describe, expect, it } from 'vitest';
import { applyAffine } from './affine';
import type { Georeference, GeoreferenceReading } from './georeference';
import { georeferenceFromTags, type GeoTiffTags } from './geotiff-tags';

const UTM_33N = { GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 32633 };
const TIE_AND_SCALE = { modelTiepoint: [0, 0, 0, 500_000, 4_000_000, 0], modelPixelScale: [10, 10, 0] };

function tags(overrides: Partial<GeoTiffTags>): GeoTiffTags {
  return { width: 100, height: 50, ...overrides };
}

function georeferenced(reading: GeoreferenceReading | undefined): Georeference {
  if (reading?.kind !== 'georeferenced') throw new Error(`expected a georeference, got ${JSON.stringify(reading)}`);
  return reading;
}

describe('georeferenceFromTags: transforms', () => {
  it('gives undefined for a TIFF with no transform tag and no geo key', () => {
    expect(georeferenceFromTags(tags({}))).toBeUndefined();
    expect(georeferenceFromTags(tags({ geoKeys: null }))).toBeUndefined();
  });

  it('reads a tie point that is not at pixel (0, 0) with a pixel scale (y grows down in rows, up in the model)', () => {
    const reading = georeferenced(
      georeferenceFromTags(tags({ modelTiepoint: [10, 20, 0, 500_000, 4_000_000, 0], modelPixelScale: [2, 3, 0], geoKeys: UTM_33N })),
    );
    expect(reading).toMatchObject({ width: 100, height: 50, rasterType: 'pixel-is-area', crs: { epsg: 32633, name: 'WGS 84 / UTM zone 33N' } });
    expect(applyAffine(reading.transform, [10, 20])).toEqual([500_000, 4_000_000]);
    expect(applyAffine(reading.transform, [0, 0])).toEqual([499_980, 4_000_060]);
    expect(applyAffine(reading.transform, [11, 21])).toEqual([500_002, 3_999_997]);
  });

  it('shifts pixel-is-point by half a pixel: the tie point is the centre of pixel (0, 0)', () => {
    const reading = georeferenced(georeferenceFromTags(tags({ ...TIE_AND_SCALE, geoKeys: { ...UTM_33N, GTRasterTypeGeoKey: 2 } })));
    expect(reading.rasterType).toBe('pixel-is-point');
    expect(applyAffine(reading.transform, [0.5, 0.5])).toEqual([500_000, 4_000_000]);
    expect(applyAffine(reading.transform, [0, 0])).toEqual([499_995, 4_000_005]);
  });

  it('reads a rotated ModelTransformation', () => {
    const matrix = [0.5, 0.25, 0, 500_000, 0.25, -0.5, 0, 4_000_000, 0, 0, 0, 0, 0, 0, 0, 1];
    const reading = georeferenced(georeferenceFromTags(tags({ modelTransformation: matrix, geoKeys: UTM_33N })));
    expect(reading.transform).toEqual({ a: 0.5, b: 0.25, c: 500_000, d: 0.25, e: -0.5, f: 4_000_000 });
    expect(applyAffine(reading.transform, [4, 2])).toEqual([500_002.5, 4_000_000]);
  });

  it('prefers one tie point with a scale over a ModelTransformation, as GDAL does', () => {
    const matrix = [1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const reading = georeferenced(georeferenceFromTags(tags({ ...TIE_AND_SCALE, modelTransformation: matrix, geoKeys: UTM_33N })));
    expect(reading.transform.c).toBe(500_000);
  });

  it('names what is wrong with a transform it cannot use', () => {
    const reason = (overrides: Partial<GeoTiffTags>) => (georeferenceFromTags(tags({ geoKeys: UTM_33N, ...overrides })) as { reason?: string }).reason;
    expect(reason({ modelTiepoint: [0, 0, 0, 1, 2, 0, 5, 5, 0, 3, 4, 0] })).toBe('ground-control-points');
    expect(reason({ modelTiepoint: [0, 0, 0, 500_000, 4_000_000, 0], modelPixelScale: [0, 10, 0] })).toBe('invalid-transform');
    expect(reason({ modelTiepoint: [0, 0, 0, 500_000, 4_000_000, 0] })).toBe('invalid-transform');
    expect(reason({ modelTransformation: [1, 0, 0, 0, 0, -1, 0, 0] })).toBe('invalid-transform');
    expect(reason({ modelTransformation: [1, 2, 0, 0, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] })).toBe('invalid-transform');
    expect(reason({ modelTiepoint: [0, 0, 0, NaN, 4_000_000, 0], modelPixelScale: [10, 10, 0] })).toBe('invalid-transform');
    expect(reason({})).toBe('no-transform');
    expect(reason({ ...TIE_AND_SCALE, orientation: 6 })).toBe('tiff-orientation');
  });
});

describe('georeferenceFromTags: CRS', () => {
  const reading = (geoKeys: Record<string, unknown> | null) => georeferenceFromTags(tags({ ...TIE_AND_SCALE, geoKeys }));

  it('takes ProjectedCSTypeGeoKey before GeographicTypeGeoKey, and a geographic code alone', () => {
    expect(georeferenced(reading({ ...UTM_33N, GeographicTypeGeoKey: 4326 })).crs.epsg).toBe(32633);
    const geographic = georeferenceFromTags(
      tags({ modelTiepoint: [0, 0, 0, 10, 50, 0], modelPixelScale: [0.001, 0.001, 0], geoKeys: { GTModelTypeGeoKey: 2, GeographicTypeGeoKey: [4326] } }),
    );
    expect(georeferenced(geographic).crs).toEqual({ epsg: 4326, name: 'WGS 84' });
  });

  it('reports a user-defined CRS, an unsupported code, a geocentric model and a missing CRS as values', () => {
    expect(reading({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 32767 })).toMatchObject({
      kind: 'unsupported',
      reason: 'user-defined-crs',
      epsg: 32767,
    });
    expect(reading({ GTModelTypeGeoKey: 1, GeographicTypeGeoKey: 4326 })).toMatchObject({ reason: 'user-defined-crs' });
    expect(reading({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 2154 })).toMatchObject({
      kind: 'unsupported',
      reason: 'unsupported-crs',
      epsg: 2154,
      message: expect.stringContaining('EPSG:2154'),
    });
    expect(reading({ GTModelTypeGeoKey: 3 })).toMatchObject({ reason: 'unsupported-crs' });
    expect(reading(null)).toMatchObject({ reason: 'no-crs' });
    expect(reading({ GTRasterTypeGeoKey: 1 })).toMatchObject({ reason: 'no-crs' });
  });
});

describe('georeferenceFromTags: footprint', () => {
  it('accepts a whole-globe EPSG:4326 image (edges on ±180 are not a crossing)', () => {
    const globe = tags({
      width: 360,
      height: 180,
      modelTiepoint: [0, 0, 0, -180, 90, 0],
      modelPixelScale: [1, 1, 0],
      geoKeys: { GeographicTypeGeoKey: 4326 },
    });
    expect(georeferenceFromTags(globe)?.kind).toBe('georeferenced');
  });

  it('refuses an image across the antimeridian, beyond the poles or outside its projection', () => {
    // UTM zone 60N's central meridian is 177°E; 180° is about 333 km east of it at the equator.
    const acrossDateLine = tags({
      width: 200,
      height: 100,
      modelTiepoint: [0, 0, 0, 700_000, 100_000, 0],
      modelPixelScale: [1000, 1000, 0],
      geoKeys: { ProjectedCSTypeGeoKey: 32660 },
    });
    expect(georeferenceFromTags(acrossDateLine)).toMatchObject({ reason: 'crosses-antimeridian', epsg: 32660 });
    const pastThePole = tags({
      modelTiepoint: [0, 0, 0, 0, 95, 0],
      modelPixelScale: [0.1, 0.1, 0],
      geoKeys: { GeographicTypeGeoKey: 4326 },
    });
    expect(georeferenceFromTags(pastThePole)).toMatchObject({ reason: 'outside-wgs84', epsg: 4326 });
    const farOff = tags({ modelTiepoint: [0, 0, 0, 1e9, 1e9, 0], modelPixelScale: [10, 10, 0], geoKeys: UTM_33N });
    expect(georeferenceFromTags(farOff)).toMatchObject({ reason: 'outside-wgs84', epsg: 32633 });
  });
});
