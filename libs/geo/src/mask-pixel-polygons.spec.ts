import fc from 'fast-check';
import type { MultiPolygon, Position } from 'geojson';
import { describe, expect, it } from 'vitest';
import { IGNORE_LABEL, InvalidMaskShapeError, LabelOutOfRangeError, type LabelMask } from '@rsmoe/region-outputs';
import { maskToPixelPolygons } from './mask-features';
import { signedArea } from './rings';

const CLASSES = ['others', 'water', 'building'];

/** A mask from rows of digits ('.' for the ignore label). */
function mask(...rows: string[]): LabelMask {
  const data = Uint8Array.from(rows.join('').split(''), (c) => (c === '.' ? IGNORE_LABEL : Number(c)));
  return { width: rows[0].length, height: rows.length, data };
}

function polygonsOf(labelMask: LabelMask, index: number): MultiPolygon['coordinates'] {
  const feature = maskToPixelPolygons(labelMask, CLASSES).features.find((f) => f.properties.index === index);
  if (feature === undefined) throw new Error(`no feature for class ${index}`);
  return feature.geometry.coordinates;
}

describe('maskToPixelPolygons', () => {
  it('gives a one-pixel object the pixel’s square, closed', () => {
    const [[exterior, ...holes], ...others] = polygonsOf(mask('000', '000', '010'), 1);
    expect([holes, others]).toEqual([[], []]);
    expect(exterior).toHaveLength(5);
    expect(exterior[4]).toEqual(exterior[0]);
    expect(exterior.slice(0, 4)).toEqual(
      expect.arrayContaining([
        [1, 2],
        [2, 2],
        [2, 3],
        [1, 3],
      ]),
    );
    expect(signedArea(exterior)).toBe(1);
  });

  it('keeps a hole as a hole, and an island in the hole as its own polygon', () => {
    const [[exterior, hole]] = polygonsOf(mask('111', '101', '111'), 1);
    expect(signedArea(exterior)).toBe(9);
    expect(signedArea(hole)).toBe(-1);
    const islands = polygonsOf(mask('11111', '10001', '10101', '10001', '11111'), 1);
    expect(islands.map((polygon) => polygon.map(signedArea))).toEqual(expect.arrayContaining([[25, -9], [1]]));
    expect(islands).toHaveLength(2);
  });

  it('splits pixels that meet only at a corner into polygons touching at that corner', () => {
    const polygons = polygonsOf(mask('10', '01'), 1);
    expect(polygons).toHaveLength(2);
    expect(polygons.map(([exterior]) => signedArea(exterior))).toEqual([1, 1]);
    for (const [exterior] of polygons) expect(exterior).toContainEqual([1, 1]);
  });

  it('makes a hole that reaches the outside only through a corner a hole touching its exterior there', () => {
    const [[exterior, hole], ...others] = polygonsOf(mask('111', '101', '110'), 1);
    expect(others).toHaveLength(0);
    expect(signedArea(exterior)).toBe(8);
    expect(signedArea(hole)).toBe(-1);
    expect(exterior).toContainEqual([2, 2]);
    expect(hole).toContainEqual([2, 2]);
  });

  it('splits a hole that passes through one corner twice into two holes touching there', () => {
    const [[exterior, ...holes], ...others] = polygonsOf(mask('1111', '1011', '1101', '1111'), 1);
    expect(others).toHaveLength(0);
    expect(signedArea(exterior)).toBe(16);
    expect(holes.map(signedArea)).toEqual([-1, -1]);
    for (const hole of holes) expect(hole).toContainEqual([2, 2]);
  });

  it('gives each of many small rings its own hole', () => {
    const size = 256;
    const data = new Uint8Array(size * size);
    // 3 × 3 rings of water around one pixel of others, on a 4-pixel pitch.
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) data[y * size + x] = x % 4 < 3 && y % 4 < 3 && !(x % 4 === 1 && y % 4 === 1) ? 1 : 0;
    }
    const polygons = polygonsOf({ width: size, height: size, data }, 1);
    expect(polygons).toHaveLength((size / 4) ** 2);
    for (const polygon of polygons) expect(polygon.map(signedArea)).toEqual([9, -1]);
  });

  it('gives one feature per class present, in index order, skipping others (0) and the ignore label', () => {
    const features = maskToPixelPolygons(mask('2.0', '.01', '002'), CLASSES).features;
    expect(features.map((f) => f.properties)).toEqual([
      { class: 'water', index: 1 },
      { class: 'building', index: 2 },
    ]);
    expect(maskToPixelPolygons(mask('0.', '.0'), CLASSES).features).toEqual([]);
  });

  it('rejects a label with no class and a mask of the wrong length', () => {
    expect(() => maskToPixelPolygons(mask('013'), CLASSES)).toThrow(LabelOutOfRangeError);
    expect(() => maskToPixelPolygons({ width: 2, height: 2, data: new Uint8Array(3) }, CLASSES)).toThrow(InvalidMaskShapeError);
  });
});

/** Even-odd test; pixel centres never lie on an outline, which runs along whole pixel coordinates. */
function inside(ring: Position[], [x, y]: Position): boolean {
  let result = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) result = !result;
  }
  return result;
}

const labelMask = fc
  .record({ width: fc.integer({ min: 1, max: 12 }), height: fc.integer({ min: 1, max: 12 }) })
  .chain(({ width, height }) =>
    fc
      .array(fc.constantFrom(0, 1, 1, 2, IGNORE_LABEL), { minLength: width * height, maxLength: width * height })
      .map((labels): LabelMask => ({ width, height, data: Uint8Array.from(labels) })),
  );

describe('maskToPixelPolygons properties', () => {
  it('covers exactly each class’s pixels with valid, well-oriented polygons whose areas are pixel counts', () => {
    fc.assert(
      fc.property(labelMask, (m) => {
        const features = maskToPixelPolygons(m, CLASSES).features;
        const present = [1, 2].filter((label) => m.data.includes(label));
        expect(features.map((f) => f.properties.index)).toEqual(present);
        for (const feature of features) {
          const owner = new Int32Array(m.width * m.height).fill(-1);
          feature.geometry.coordinates.forEach((polygon, p) => {
            const [exterior, ...holes] = polygon;
            for (const ring of polygon) {
              expect(ring[0]).toEqual(ring[ring.length - 1]);
              const keys = ring.slice(1).map(([x, y]) => `${x},${y}`);
              expect(new Set(keys).size).toBe(keys.length);
              expect(ring.flat().every(Number.isInteger)).toBe(true);
            }
            expect(signedArea(exterior)).toBeGreaterThan(0);
            for (const hole of holes) expect(signedArea(hole)).toBeLessThan(0);
            let covered = 0;
            for (let y = 0; y < m.height; y++) {
              for (let x = 0; x < m.width; x++) {
                const centre = [x + 0.5, y + 0.5];
                if (!inside(exterior, centre) || holes.some((hole) => inside(hole, centre))) continue;
                expect(owner[y * m.width + x]).toBe(-1);
                owner[y * m.width + x] = p;
                covered++;
              }
            }
            expect(polygon.reduce((area, ring) => area + signedArea(ring), 0)).toBe(covered);
          });
          m.data.forEach((label, i) => expect(owner[i] !== -1).toBe(label === feature.properties.index));
        }
      }),
    );
  });
});
