import type { Position } from 'geojson';
import { describe, expect, it } from 'vitest';
import { LabelOutOfRangeError, type LabelMask } from '@rsmoe/region-outputs';
import { utmToLonLat } from '../test-support/transverse-mercator';
import type { AffineTransform } from './affine';
import type { Georeference } from './georeference';
import { maskToFeatureCollection } from './mask-features';
import { signedArea } from './rings';

const CLASSES = ['others', 'water', 'building'];

function georeference(epsg: number, transform: AffineTransform, width: number, height: number): Georeference {
  return { kind: 'georeferenced', width, height, transform, crs: { epsg, name: `EPSG:${epsg}` }, rasterType: 'pixel-is-area' };
}

function grid(width: number, height: number, labels: Record<string, number>): LabelMask {
  const data = new Uint8Array(width * height);
  for (const [at, label] of Object.entries(labels)) {
    const [x, y] = at.split(',').map(Number);
    data[y * width + x] = label;
  }
  return { width, height, data };
}

/** A 3 × 3 ring of water around one pixel of others, and one building pixel in the corner of a 4 × 4 mask. */
const RING_AND_DOT = grid(4, 4, {
  '0,0': 1, '1,0': 1, '2,0': 1,
  '0,1': 1, '2,1': 1,
  '0,2': 1, '1,2': 1, '2,2': 1,
  '3,3': 2,
});

describe('maskToFeatureCollection', () => {
  it('gives one MultiPolygon per class present in lon/lat, exteriors counter-clockwise and holes clockwise', () => {
    const lonLat = georeference(4326, { a: 0.01, b: 0, c: 10, d: 0, e: -0.01, f: 50 }, 4, 4);
    const { wgs84, nativeCrs } = maskToFeatureCollection(RING_AND_DOT, CLASSES, lonLat);
    expect(wgs84.features.map((f) => f.properties)).toEqual([
      { class: 'water', index: 1 },
      { class: 'building', index: 2 },
    ]);
    const [[water], [building]] = wgs84.features.map((f) => f.geometry.coordinates);
    const [exterior, hole] = water;
    expect(signedArea(exterior)).toBeCloseTo(9e-4, 12);
    expect(signedArea(hole)).toBeCloseTo(-1e-4, 12);
    for (const ring of [exterior, hole]) expect(ring[0]).toEqual(ring[ring.length - 1]);
    expect(building[0].slice(0, 4)).toEqual(
      expect.arrayContaining([
        [10.03, 49.97],
        [10.04, 49.97],
        [10.04, 49.96],
        [10.03, 49.96],
      ]),
    );
    expect(nativeCrs).toEqual({ epsg: 4326, featureCollection: wgs84 });
  });

  it('orients rings for GeoJSON even when the image is not north-up (y growing with rows)', () => {
    const southUp = georeference(4326, { a: 0.01, b: 0, c: 10, d: 0, e: 0.01, f: 50 }, 4, 4);
    const [[exterior, hole]] = maskToFeatureCollection(RING_AND_DOT, CLASSES, southUp).wgs84.features[0].geometry.coordinates;
    expect(signedArea(exterior)).toBeGreaterThan(0);
    expect(signedArea(hole)).toBeLessThan(0);
  });

  it('stretches a mask smaller than the image over it', () => {
    const image = georeference(4326, { a: 1, b: 0, c: 0, d: 0, e: -1, f: 0 }, 40, 20);
    const [[[exterior]]] = maskToFeatureCollection(grid(2, 2, { '1,1': 1 }), CLASSES, image).wgs84.features.map((f) => f.geometry.coordinates);
    expect(exterior.slice(0, 4)).toEqual(
      expect.arrayContaining([
        [20, -10],
        [40, -10],
        [40, -20],
        [20, -20],
      ]),
    );
  });

  it('reprojects UTM masks to where an independent transverse Mercator puts them, long edges densified', () => {
    const utm = georeference(32633, { a: 10, b: 0, c: 500_000, d: 0, e: -10, f: 5_000_000 }, 160, 160);
    const allWater = { width: 16, height: 16, data: new Uint8Array(256).fill(1) };
    const { wgs84, nativeCrs } = maskToFeatureCollection(allWater, CLASSES, utm);
    const [[native]] = nativeCrs.featureCollection.features[0].geometry.coordinates;
    expect(native).toHaveLength(5);
    const [[ring]] = wgs84.features[0].geometry.coordinates;
    // 16 pieces per image side, each side 160 pixels long: 64 positions, plus the closing one.
    expect(ring).toHaveLength(65);
    const near = (a: Position, b: Position) => Math.abs(a[0] - b[0]) < 1e-8 && Math.abs(a[1] - b[1]) < 1e-8;
    for (const [e, n] of [
      [500_000, 5_000_000],
      [501_600, 5_000_000],
      [501_600, 4_998_400],
      [500_000, 4_998_400],
      [500_800, 5_000_000],
    ]) {
      expect(ring.some((position) => near(position, utmToLonLat(e, n, 33, false)))).toBe(true);
    }
  });

  it('rejects a label with no class', () => {
    const lonLat = georeference(4326, { a: 1, b: 0, c: 0, d: 0, e: -1, f: 0 }, 2, 1);
    expect(() => maskToFeatureCollection({ width: 2, height: 1, data: Uint8Array.from([1, 7]) }, CLASSES, lonLat)).toThrow(LabelOutOfRangeError);
  });
});
