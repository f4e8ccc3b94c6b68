import fc from 'fast-check';
import type { Position } from 'geojson';
import { describe, expect, it } from 'vitest';
import { densifyRing, finishPolygon, signedArea } from './rings';

const square: Position[] = [
  [0, 0],
  [2, 0],
  [2, 2],
  [0, 2],
];

describe('rings', () => {
  it('signs the area positive for a counter-clockwise ring (x right, y up), open or closed', () => {
    expect(signedArea(square)).toBe(4);
    expect(signedArea([...square, square[0]])).toBe(4);
    expect(signedArea([...square].reverse())).toBe(-4);
  });

  it('closes every ring and turns the exterior counter-clockwise, holes clockwise', () => {
    const hole: Position[] = [
      [0.5, 0.5],
      [1, 0.5],
      [1, 1],
    ];
    const [exterior, inner] = finishPolygon([[...square].reverse(), hole]);
    expect(exterior[0]).toEqual(exterior[exterior.length - 1]);
    expect(inner[0]).toEqual(inner[inner.length - 1]);
    expect(exterior).toHaveLength(5);
    expect(signedArea(exterior)).toBeGreaterThan(0);
    expect(signedArea(inner)).toBeLessThan(0);
  });

  it('densifies long edges only, keeping the ring’s own positions', () => {
    expect(densifyRing(square, 2)).toEqual(square);
    expect(densifyRing(square, 1)).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
      [2, 1],
      [2, 2],
      [1, 2],
      [0, 2],
      [0, 1],
    ]);
  });
});

const coordinate = fc.double({ min: -1000, max: 1000, noNaN: true });
const ring = fc.array(fc.tuple(coordinate, coordinate), { minLength: 3, maxLength: 8 });

describe('densifyRing properties', () => {
  it('keeps every original position in order, cuts no piece longer than asked and keeps the area', () => {
    fc.assert(
      fc.property(ring, fc.double({ min: 1, max: 500, noNaN: true }), (positions, maxLength) => {
        const dense = densifyRing(positions, maxLength);
        let next = 0;
        for (const p of dense) if (next < positions.length && p[0] === positions[next][0] && p[1] === positions[next][1]) next++;
        expect(next).toBe(positions.length);
        expect(dense[0]).toEqual(positions[0]);
        dense.forEach((p, i) => {
          const q = dense[(i + 1) % dense.length];
          expect(Math.hypot(q[0] - p[0], q[1] - p[1])).toBeLessThanOrEqual(maxLength * (1 + 1e-9));
        });
        expect(signedArea(dense)).toBeCloseTo(signedArea(positions), 3);
      }),
    );
  });
});
