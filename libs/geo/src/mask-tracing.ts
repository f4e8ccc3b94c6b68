import { contours } from 'd3-contour';
import type { Position } from 'geojson';
import { assertLabelMask, IGNORE_LABEL, LabelOutOfRangeError, type LabelMask } from '@rsmoe/region-outputs';
import { signedArea } from './rings';

/** The label of `others` (background), which gets no polygons. */
export const BACKGROUND_LABEL = 0;

/** One class's outline in mask pixel coordinates: polygons of open rings, exterior first, orientation not set. */
export interface TracedClass {
  index: number;
  class: string;
  polygons: Position[][][];
}

/**
 * Every class present in the mask but background (0) and IGNORE_LABEL (255), in index order, traced to
 * polygons that follow pixel edges exactly: the area of a class's polygons is its pixel count. Pixels of a
 * class join across edges, not across corners (4-connectivity); two pieces that meet only at a corner are two
 * polygons touching at that point, and a hole that meets its exterior at a corner touches it at that point, as
 * OGC simple features allow. Throws LabelOutOfRangeError for a label the class list does not have.
 *
 * d3-contour's marching squares find the outlines (rings and which holes belong to which exterior); its
 * vertices lie halfway along pixel edges and cut every corner at 45°, so each such cut is replaced by the corner
 * it cuts, and a ring that then passes twice through the same corner is split there into simple rings.
 *
 * Each 4-connected piece is traced on its own bounding box: d3 matches every hole against the exteriors of one
 * call in turn, so a class of many small rings (thousands of exteriors and as many holes) traced in one call
 * costs exteriors × holes. Piece numbers take 4 bytes per mask pixel while tracing: trace the label grid a model
 * wrote rather than the grid resized to the image (maskToFeatureCollection stretches it over the image).
 */
export function traceClasses(mask: LabelMask, classes: readonly string[]): TracedClass[] {
  assertLabelMask(mask);
  const { pieceOf, pieces } = findPieces(mask, classes.length);
  const byLabel = new Map<number, Position[][][]>();
  pieces.forEach((piece, id) => {
    const polygons = byLabel.get(piece.label) ?? [];
    polygons.push(...tracePiece(pieceOf, mask.width, id, piece));
    byLabel.set(piece.label, polygons);
  });
  return [...byLabel.keys()]
    .sort((a, b) => a - b)
    .map((index) => ({ index, class: classes[index], polygons: byLabel.get(index)! }));
}

/** A 4-connected piece of one label: its pixels span columns x0 to x1 and rows y0 to y1, inclusive. */
interface Piece {
  label: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The 4-connected pieces of every label to trace, and each pixel's piece number (−1: none). */
function findPieces(mask: LabelMask, classCount: number): { pieceOf: Int32Array; pieces: Piece[] } {
  const { width, height, data } = mask;
  const pieceOf = new Int32Array(width * height).fill(-1);
  const pieces: Piece[] = [];
  const stack: number[] = [];
  for (let start = 0; start < data.length; start++) {
    const label = data[start];
    if (label === IGNORE_LABEL) continue;
    if (label >= classCount) throw new LabelOutOfRangeError(label, classCount);
    if (label === BACKGROUND_LABEL || pieceOf[start] !== -1) continue;
    const id = pieces.length;
    const piece: Piece = { label, x0: width, y0: height, x1: 0, y1: 0 };
    pieces.push(piece);
    const visit = (i: number) => {
      if (pieceOf[i] === -1 && data[i] === label) {
        pieceOf[i] = id;
        stack.push(i);
      }
    };
    visit(start);
    while (stack.length > 0) {
      const i = stack.pop()!;
      const x = i % width;
      const y = (i - x) / width;
      piece.x0 = Math.min(piece.x0, x);
      piece.x1 = Math.max(piece.x1, x);
      piece.y0 = Math.min(piece.y0, y);
      piece.y1 = Math.max(piece.y1, y);
      if (x > 0) visit(i - 1);
      if (x < width - 1) visit(i + 1);
      if (y > 0) visit(i - width);
      if (y < height - 1) visit(i + width);
    }
  }
  return { pieceOf, pieces };
}

function tracePiece(pieceOf: Int32Array, maskWidth: number, id: number, { x0, y0, x1, y1 }: Piece): Position[][][] {
  const width = x1 - x0 + 1;
  const height = y1 - y0 + 1;
  const binary = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = (y + y0) * maskWidth + x0;
    for (let x = 0; x < width; x++) binary[y * width + x] = pieceOf[row + x] === id ? 1 : 0;
  }
  // d3 reads the values by index only, so a typed array serves (the types ask for number[]).
  const multiPolygon = contours()
    .size([width, height])
    .smooth(false)
    .contour(binary as unknown as number[], 0.5);
  const offset = (ring: Position[]) => ring.map(([x, y]) => [x + x0, y + y0]);
  return multiPolygon.coordinates.map(([exterior, ...holes]) => {
    // The outer loop encloses the loops split off it, which are holes touching it at a corner.
    const [outer, ...inner] = splitAtRepeats(cornerRing(exterior), width + 1).sort(byAreaDescending);
    const holeRings = holes.flatMap((hole) => splitAtRepeats(cornerRing(hole), width + 1));
    return [outer, ...inner, ...holeRings].map(offset);
  });
}

/**
 * A closed marching-squares ring (vertices halfway along pixel edges: one coordinate whole, the other whole + ½)
 * as the open ring of the pixel corners it cuts: a diagonal step from p to q cuts the corner on p's edge line and
 * q's, and straight steps run along pixel edges, so the corners alone trace the pixels' outline.
 */
function cornerRing(ring: Position[]): Position[] {
  const corners: Position[] = [];
  for (let i = 0; i + 1 < ring.length; i++) {
    const [px, py] = ring[i];
    const [qx, qy] = ring[i + 1];
    if (px === qx || py === qy) continue;
    corners.push(Number.isInteger(px) ? [px, qy] : [qx, py]);
  }
  return corners;
}

/**
 * An open ring that passes through the same position more than once (at a corner where two pixels of the class
 * meet diagonally) as the simple rings it is made of; `stride` > every x, for position keys.
 */
function splitAtRepeats(ring: Position[], stride: number): Position[][] {
  const loops: Position[][] = [];
  const path: Position[] = [];
  const indexOf = new Map<number, number>();
  const key = ([x, y]: Position) => y * stride + x;
  for (const position of ring) {
    const seen = indexOf.get(key(position));
    if (seen !== undefined) {
      const loop = path.splice(seen);
      for (const p of loop) indexOf.delete(key(p));
      loops.push(loop);
    }
    indexOf.set(key(position), path.length);
    path.push(position);
  }
  loops.push(path);
  return loops;
}

function byAreaDescending(a: Position[], b: Position[]): number {
  return Math.abs(signedArea(b)) - Math.abs(signedArea(a));
}
