import type { Position } from 'geojson';

/**
 * A pixel → CRS affine transform in the order of rasterio's `Affine` and world files:
 * `x = a·col + b·row + c`, `y = d·col + e·row + f`, where (col, row) are continuous pixel coordinates with
 * (0, 0) the top-left corner of the top-left pixel (pixel column i spans [i, i + 1)). A north-up image has
 * b = d = 0 and e < 0.
 */
export interface AffineTransform {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  f: number;
}

export function applyAffine(t: AffineTransform, [col, row]: Position): Position {
  return [t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f];
}

/** Whether every term is finite and the transform can be inverted (a pixel has a non-zero area on the ground). */
export function isUsableAffine(t: AffineTransform): boolean {
  const terms = [t.a, t.b, t.c, t.d, t.e, t.f];
  return terms.every(Number.isFinite) && t.a * t.e - t.b * t.d !== 0;
}

/** The transform applied after shifting pixel coordinates by (dCol, dRow): `t(col + dCol, row + dRow)`. */
export function shiftAffine(t: AffineTransform, dCol: number, dRow: number): AffineTransform {
  return { ...t, c: t.c + t.a * dCol + t.b * dRow, f: t.f + t.d * dCol + t.e * dRow };
}
