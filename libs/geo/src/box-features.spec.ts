import fc from 'fast-check';
import type { Polygon, Position } from 'geojson';
import { describe, expect, it } from 'vitest';
import type { PixelBox } from '@rsmoe/region-outputs';
import { geoTiff } from '../test-support/geotiff-fixtures';
import { lonLatToUtm, utmToLonLat } from '../test-support/transverse-mercator';
import type { AffineTransform } from './affine';
import { boxesToFeatureCollection } from './box-features';
import { InvalidPixelBoxError, PropertiesCountError, UnsupportedCrsError } from './errors';
import type { Georeference } from './georeference';
import { readGeoreference } from './read-georeference';
import { signedArea } from './rings';

const px = (x1: number, y1: number, x2: number, y2: number): PixelBox => ({ unit: 'px', x1, y1, x2, y2 });

function georeference(epsg: number, transform: AffineTransform, width = 100, height = 100): Georeference {
  return { kind: 'georeferenced', width, height, transform, crs: { epsg, name: `EPSG:${epsg}` }, rasterType: 'pixel-is-area' };
}

/** 0.001° pixels from 10°E, 50°N. */
const LON_LAT = georeference(4326, { a: 0.001, b: 0, c: 10, d: 0, e: -0.001, f: 50 });

function coordinatesOf(geometry: Polygon | null): Position[][] {
  if (geometry === null) throw new Error('no geometry');
  return geometry.coordinates;
}

describe('boxesToFeatureCollection', () => {
  it('maps a box’s corners through the transform, closed and counter-clockwise, with its properties', () => {
    const { wgs84, nativeCrs } = boxesToFeatureCollection([px(20, 10, 40, 30)], LON_LAT, [{ label: 'ship', score: 0.9 }]);
    const [feature] = wgs84.features;
    expect(feature.properties).toEqual({ label: 'ship', score: 0.9 });
    const [ring] = coordinatesOf(feature.geometry);
    expect(ring).toHaveLength(5);
    expect(ring[4]).toEqual(ring[0]);
    expect(signedArea(ring)).toBeGreaterThan(0);
    for (const [lon, lat] of [
      [10.02, 49.99],
      [10.04, 49.99],
      [10.04, 49.97],
      [10.02, 49.97],
    ]) {
      expect(ring.some(([x, y]) => Math.abs(x - lon) < 1e-12 && Math.abs(y - lat) < 1e-12)).toBe(true);
    }
    expect(nativeCrs.epsg).toBe(4326);
    expect(nativeCrs.featureCollection).toEqual(wgs84);
  });

  it('places a box from a UTM GeoTIFF where an independent transverse Mercator puts it, densified', async () => {
    const bytes = geoTiff(1000, 1000, {
      ModelTiepoint: [0, 0, 0, 400_000, 5_300_000, 0],
      ModelPixelScale: [10, 10, 0],
      GTModelTypeGeoKey: 1,
      ProjectedCSTypeGeoKey: 32632,
    });
    const utm = await readGeoreference(bytes);
    if (utm?.kind !== 'georeferenced') throw new Error(JSON.stringify(utm));
    const { wgs84, nativeCrs } = boxesToFeatureCollection([px(100, 200, 900, 600)], utm, [{}]);

    const [native] = coordinatesOf(nativeCrs.featureCollection.features[0].geometry);
    expect(nativeCrs.epsg).toBe(32632);
    expect(native).toHaveLength(5);
    expect(native.slice(0, 4)).toEqual(
      expect.arrayContaining([
        [401_000, 5_298_000],
        [409_000, 5_298_000],
        [409_000, 5_294_000],
        [401_000, 5_294_000],
      ]),
    );
    expect(signedArea(native)).toBeGreaterThan(0);

    const [ring] = coordinatesOf(wgs84.features[0].geometry);
    expect(ring.length).toBeGreaterThan(5);
    expect(signedArea(ring)).toBeGreaterThan(0);
    for (const [e, n] of native) {
      const [lon, lat] = utmToLonLat(e, n, 32, false);
      expect(ring.some(([x, y]) => Math.abs(x - lon) < 1e-8 && Math.abs(y - lat) < 1e-8)).toBe(true);
    }
    // Every densified position lies on the box's outline in UTM: within 5 mm by the independent series.
    for (const [lon, lat] of ring) {
      const [e, n] = lonLatToUtm(lon, lat, 32, false);
      const offOutline = Math.min(Math.abs(e - 401_000), Math.abs(e - 409_000), Math.abs(n - 5_298_000), Math.abs(n - 5_294_000));
      expect(offOutline).toBeLessThan(0.005);
      expect(e > 401_000 - 0.005 && e < 409_000 + 0.005 && n > 5_294_000 - 0.005 && n < 5_298_000 + 0.005).toBe(true);
    }
  });

  it('gives a box with no area a null geometry, keeping features aligned with boxes', () => {
    const { wgs84, nativeCrs } = boxesToFeatureCollection([px(5, 5, 5, 9), px(1, 1, 2, 2)], LON_LAT, [{ n: 0 }, { n: 1 }]);
    expect(wgs84.features.map((f) => f.geometry?.type ?? null)).toEqual([null, 'Polygon']);
    expect(nativeCrs.featureCollection.features[0].geometry).toBeNull();
  });

  it('throws named errors for a non-finite corner, a property list of the wrong length and an unsupported CRS', () => {
    expect(() => boxesToFeatureCollection([px(0, NaN, 1, 1)], LON_LAT, [{}])).toThrow(InvalidPixelBoxError);
    expect(() => boxesToFeatureCollection([px(0, 0, 1, 1)], LON_LAT, [])).toThrow(PropertiesCountError);
    expect(() => boxesToFeatureCollection([], georeference(2154, LON_LAT.transform), [])).toThrow(UnsupportedCrsError);
  });
});

const scale = fc.double({ min: 0.1, max: 100, noNaN: true });
const sign = fc.constantFrom(-1, 1);
const angle = fc.double({ min: -Math.PI, max: Math.PI, noNaN: true });
/** Transforms of UTM zone 31N images: any pixel size, rotation and mirroring. */
const utmTransform = fc.tuple(scale, scale, sign, angle).map(([sx, sy, flip, theta]): AffineTransform => {
  const [cos, sin] = [Math.cos(theta), Math.sin(theta)];
  return { a: sx * cos, b: -sy * flip * sin, c: 450_000, d: sx * sin, e: sy * flip * cos, f: 5_000_000 };
});
/** Box corners on a 1/100-pixel grid: finer than any box a model writes. */
const coordinate = fc.integer({ min: 0, max: 10_000 }).map((hundredths) => hundredths / 100);
const box = fc.tuple(coordinate, coordinate, coordinate, coordinate).map(([x1, y1, x2, y2]) => px(x1, y1, x2, y2));

describe('boxesToFeatureCollection properties', () => {
  it('gives closed rings, counter-clockwise in both CRSs, whatever the transform’s rotation or mirroring', () => {
    fc.assert(
      fc.property(utmTransform, box, (transform, b) => {
        const { wgs84, nativeCrs } = boxesToFeatureCollection([b], georeference(32631, transform), [null]);
        const geometries = [wgs84.features[0].geometry, nativeCrs.featureCollection.features[0].geometry];
        if (b.x1 === b.x2 || b.y1 === b.y2) {
          expect(geometries).toEqual([null, null]);
          return;
        }
        for (const [ring] of geometries.map(coordinatesOf)) {
          expect(ring[0]).toEqual(ring[ring.length - 1]);
          expect(signedArea(ring)).toBeGreaterThan(0);
        }
      }),
    );
  });
});
