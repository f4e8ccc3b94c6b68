import { describe, expect, it } from 'vitest';
import { boundingBox, boxGap, clipToRect, pointInPolygon, polygonArea, rotatedRect, scanPolygon } from './geometry';

describe('geometry', () => {
  it('clips a polygon to the image and keeps its area inside', () => {
    const clipped = clipToRect([[-10, -10], [20, -10], [20, 20], [-10, 20]], 10, 10);
    expect(polygonArea(clipped)).toBeCloseTo(100);
    expect(boundingBox(clipped, 10, 10)).toEqual([0, 0, 10, 10]);
  });

  it('rasterises a rotated rectangle to about its area', () => {
    const poly = rotatedRect(50, 50, 30, 10, 0.7);
    let pixels = 0;
    scanPolygon(poly, 100, 100, (_y, x0, x1) => (pixels += x1 - x0 + 1));
    expect(Math.abs(pixels - 300)).toBeLessThan(20);
    expect(pointInPolygon([50, 50], poly)).toBe(true);
    expect(pointInPolygon([10, 10], poly)).toBe(false);
  });

  it('measures gaps between boxes', () => {
    expect(boxGap([0, 0, 10, 10], [13, 0, 20, 10])).toBe(3);
    expect(boxGap([0, 0, 10, 10], [5, 5, 20, 20])).toBe(0);
  });
});
