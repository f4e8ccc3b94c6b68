import type { Position } from 'geojson';

/**
 * The signed (shoelace) area of a ring: positive when it turns counter-clockwise with x to the right and y up
 * (RFC 7946's exterior orientation). The ring may be open or closed (first = last): the closing edge adds 0.
 */
export function signedArea(ring: readonly Position[]): number {
  if (ring.length === 0) return 0;
  // Relative to the first position: a millimetre box 45° from the origin in degrees would otherwise lose its
  // area (about 1e-16) in the rounding of products near 450.
  const [x0, y0] = ring[0];
  let sum = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    sum += (ring[j][0] - x0) * (ring[i][1] - y0) - (ring[i][0] - x0) * (ring[j][1] - y0);
  }
  return sum / 2;
}

/**
 * An open polygon (exterior first, then holes) as RFC 7946 writes it: every ring closed (first = last
 * position), the exterior counter-clockwise (positive signed area) and holes clockwise. Orientation is
 * decided on the coordinates as they are now, so call it after the last transform (a flip of y reverses it).
 */
export function finishPolygon(rings: readonly (readonly Position[])[]): Position[][] {
  return rings.map((ring, i) => {
    const wantPositive = i === 0;
    const closed = [...ring, ring[0]];
    return signedArea(closed) > 0 === wantPositive ? closed : closed.reverse();
  });
}

/**
 * An open ring with points added along every edge longer than `maxLength`, each edge cut into equal pieces no
 * longer than it; the ring's own positions are kept.
 */
export function densifyRing(ring: readonly Position[], maxLength: number): Position[] {
  const out: Position[] = [];
  for (let i = 0; i < ring.length; i++) {
    const [x0, y0] = ring[i];
    const [x1, y1] = ring[(i + 1) % ring.length];
    const pieces = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / maxLength));
    out.push([x0, y0]);
    for (let k = 1; k < pieces; k++) out.push([x0 + ((x1 - x0) * k) / pieces, y0 + ((y1 - y0) * k) / pieces]);
  }
  return out;
}
