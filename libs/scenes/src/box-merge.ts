import type { Tile, TileBox } from './scene.types';

/** A box within this many pixels of a tile edge that is not the scene's edge is cut by the tile: a piece. */
export const BORDER_MARGIN_PX = 2;
/** Two boxes of one phrase with IoU at or above this are one object (classic NMS). */
export const MERGE_IOU = 0.5;
/** A piece whose intersection with a kept box covers this share of the smaller of the two belongs to it. */
export const PIECE_IOS = 0.6;

/** A box of the merged scene: the phrase, scene pixels, how many tile boxes it stands for. */
export interface MergedBox extends TileBox {
  /** Tile boxes merged into this one (1: seen by one tile only). */
  votes: number;
  /** Whether every tile box behind it touched an inner tile border (an object larger than the overlap may be cut). */
  truncated: boolean;
}

type Rect = readonly [number, number, number, number];

function area(b: Rect): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

function intersection(a: Rect, b: Rect): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0;
}

export function iou(a: Rect, b: Rect): number {
  const i = intersection(a, b);
  const u = area(a) + area(b) - i;
  return u > 0 ? i / u : 0;
}

/** Intersection over the smaller box's area. */
function ios(a: Rect, b: Rect): number {
  const smaller = Math.min(area(a), area(b));
  return smaller > 0 ? intersection(a, b) / smaller : 0;
}

/** Whether the box touches an edge of its tile that lies inside the scene (where a neighbour tile continues). */
export function touchesInnerBorder(box: Rect, tile: Tile, sceneWidth: number, sceneHeight: number): boolean {
  const m = BORDER_MARGIN_PX;
  return (
    (tile.x > 0 && box[0] <= tile.x + m) ||
    (tile.y > 0 && box[1] <= tile.y + m) ||
    (tile.x + tile.width < sceneWidth && box[2] >= tile.x + tile.width - m) ||
    (tile.y + tile.height < sceneHeight && box[3] >= tile.y + tile.height - m)
  );
}

function tileRect(tile: Tile): Rect {
  return [tile.x, tile.y, tile.x + tile.width, tile.y + tile.height];
}

function clip(box: Rect, zone: Rect): Rect {
  return [Math.max(box[0], zone[0]), Math.max(box[1], zone[1]), Math.min(box[2], zone[2]), Math.min(box[3], zone[3])];
}

/**
 * Whether two pieces (boxes cut by their tiles' borders) from two different tiles are one object: inside the zone
 * both tiles see, what each piece covers agrees (IoU ≥ MERGE_IOU).
 */
function samePieces(a: Rect, tilesA: readonly Tile[], b: Rect, tileB: Tile): boolean {
  return tilesA.some((tileA) => {
    if (tileA.index === tileB.index) return false;
    const zone = clip(tileRect(tileA), tileRect(tileB));
    if (area(zone) === 0) return false;
    const ca = clip(a, zone);
    const cb = clip(b, zone);
    return area(ca) > 0 && area(cb) > 0 && iou(ca, cb) >= MERGE_IOU;
  });
}

/**
 * Merges the boxes of overlapping tiles into one list per phrase (non-maximum suppression across tile borders).
 * The grounding expert gives no confidence, so completeness ranks instead: boxes clear of their tile's inner
 * borders first (the tile saw the whole object), then larger first. Going down that order, a box is dropped
 * when it overlaps a kept box of its phrase with IoU ≥ MERGE_IOU (the same object seen by two tiles), and a
 * *piece* (a box touching an inner border) also when its intersection covers PIECE_IOS of the smaller box (a
 * piece of a kept whole box is dropped), and two pieces from neighbouring tiles are joined (their union) when
 * they agree inside the zone both tiles see (an object larger than the overlap, cut on both sides). Everything
 * else is kept. Scene pixel coordinates in and out.
 */
export function mergeTileBoxes(found: readonly { box: TileBox; tile: Tile }[], sceneWidth: number, sceneHeight: number): MergedBox[] {
  const ranked = found
    .filter(({ box }) => area(box.box) > 0)
    .map(({ box, tile }) => ({ box, tile, truncated: touchesInnerBorder(box.box, tile, sceneWidth, sceneHeight) }))
    .sort((a, b) => Number(a.truncated) - Number(b.truncated) || area(b.box.box) - area(a.box.box));
  const kept: MergedBox[] = [];
  const keptTiles = new Map<MergedBox, Tile[]>();
  for (const { box, truncated, tile } of ranked) {
    let merged = false;
    for (const target of kept) {
      if (target.phrase !== box.phrase) continue;
      if (iou(target.box, box.box) >= MERGE_IOU) {
        target.votes += 1;
        target.truncated &&= truncated;
        merged = true;
        break;
      }
      const pieces = truncated && target.truncated && samePieces(target.box, keptTiles.get(target) ?? [], box.box, tile);
      if (pieces || (truncated && ios(target.box, box.box) >= PIECE_IOS)) {
        if (target.truncated) {
          target.box = [Math.min(target.box[0], box.box[0]), Math.min(target.box[1], box.box[1]), Math.max(target.box[2], box.box[2]), Math.max(target.box[3], box.box[3])];
          keptTiles.get(target)?.push(tile);
        }
        target.votes += 1;
        merged = true;
        break;
      }
    }
    if (!merged) {
      const entry: MergedBox = { phrase: box.phrase, box: [...box.box], votes: 1, truncated };
      kept.push(entry);
      keptTiles.set(entry, [tile]);
    }
  }
  return kept;
}
