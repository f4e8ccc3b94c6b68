import {
  boundingBox,
  boxGap,
  bufferPolyline,
  circlePolygon,
  clipToRect,
  placeShape,
  pointInPolygon,
  polygonArea,
  rotatedRect,
  scanPolygon,
} from './geometry';
import { PALETTE, SHADOW } from './palette';
import { Random } from './random';
import { Raster, valueNoise, type Rgb } from './raster';
import {
  SCENE_CLASSES,
  type ColourName,
  type GenerateSceneOptions,
  type ObjectClass,
  type Point,
  type Scene,
  type SceneClass,
  type SceneObject,
} from './scene.types';

const DEFAULT_SIZE = 128;
const SCENE_METRES = 64;

/** Raised for options that can never produce a scene. */
export class InvalidSceneOptionsError extends Error {
  override readonly name = 'InvalidSceneOptionsError';
}

const AIRPLANE: Point[] = [
  [0.5, 0], [0.42, 0.04], [0.08, 0.05], [-0.05, 0.48], [-0.13, 0.48], [-0.08, 0.05], [-0.38, 0.04], [-0.45, 0.2],
  [-0.5, 0.2], [-0.47, 0], [-0.5, -0.2], [-0.45, -0.2], [-0.38, -0.04], [-0.08, -0.05], [-0.13, -0.48],
  [-0.05, -0.48], [0.08, -0.05], [0.42, -0.04],
];
const BOAT: Point[] = [[0.5, 0], [0.2, 0.22], [-0.5, 0.2], [-0.5, -0.2], [0.2, -0.22]];

/** Holds the canvas, the scene graph and the occupancy mask while one scene is built. */
class SceneBuilder {
  readonly objects: SceneObject[] = [];
  readonly raster: Raster;
  /** 1 where a new building, tree or tank may not go. */
  private readonly blocked: Uint8Array;
  /** Shadow offset per pixel of object height, from one sun for the whole scene. */
  readonly sun: Point;

  constructor(
    readonly rng: Random,
    readonly w: number,
    readonly h: number,
    /** Pixels per pixel of the 128 px reference layout. */
    readonly s: number,
    /** Main orientation of the layout (roads, rows, fields), radians. */
    readonly angle: number,
  ) {
    const g1 = valueNoise(rng, w, h, Math.max(2, 24 * s));
    const g2 = valueNoise(rng, w, h, Math.max(2, 6 * s));
    const g3 = valueNoise(rng, w, h, 2);
    const grain = new Float32Array(w * h);
    for (let i = 0; i < grain.length; i++) grain[i] = 0.5 * g1[i] + 0.3 * g2[i] + 0.2 * g3[i];
    this.raster = new Raster(w, h, grain);
    this.blocked = new Uint8Array(w * h);
    const sunAngle = rng.range(0, Math.PI * 2);
    this.sun = [Math.cos(sunAngle) * 0.6, Math.sin(sunAngle) * 0.6];
  }

  add(
    cls: ObjectClass,
    outline: readonly Point[],
    colour: ColourName,
    attributes: SceneObject['attributes'] = {},
    line?: Point[],
  ): SceneObject | null {
    const polygon = clipToRect(outline, this.w, this.h);
    if (polygon.length < 3 || polygonArea(polygon) < 1) return null;
    const box = boundingBox(polygon, this.w, this.h);
    if (box[2] <= box[0] || box[3] <= box[1]) return null;
    const obj: SceneObject = { id: this.objects.length, class: cls, box, polygon, colour, attributes };
    if (line) obj.line = line;
    this.objects.push(obj);
    return obj;
  }

  block(poly: readonly Point[]): void {
    scanPolygon(poly, this.w, this.h, (y, x0, x1) => this.blocked.fill(1, y * this.w + x0, y * this.w + x1 + 1));
  }

  /** True when the whole outline lies inside the image and on no blocked pixel. */
  isFree(poly: readonly Point[]): boolean {
    for (const [x, y] of poly) if (x < 0.5 || y < 0.5 || x > this.w - 0.5 || y > this.h - 0.5) return false;
    let free = true;
    scanPolygon(poly, this.w, this.h, (y, x0, x1) => {
      for (let x = x0; x <= x1 && free; x++) if (this.blocked[y * this.w + x]) free = false;
    });
    return free;
  }

  /** Rejection sampling of a centre; `shape` gives the outline there, `pad` the spacing kept around it. */
  place(shape: (cx: number, cy: number) => Point[], pad = 1.3, tries = 25, near?: () => Point): Point[] | null {
    for (let t = 0; t < tries; t++) {
      const [cx, cy] = near ? near() : [this.rng.range(0, this.w), this.rng.range(0, this.h)];
      const poly = shape(cx, cy);
      const footprint = poly.map(([x, y]) => [cx + (x - cx) * pad, cy + (y - cy) * pad] as Point);
      if (this.isFree(footprint)) return poly;
    }
    return null;
  }

  background(colour: Rgb, texture: number): void {
    this.raster.fillPolygon(
      [[0, 0], [this.w, 0], [this.w, this.h], [0, this.h]],
      colour,
      { texture },
    );
  }

  shadow(poly: readonly Point[], height: number): void {
    const [dx, dy] = [this.sun[0] * height, this.sun[1] * height];
    this.raster.fillPolygon(
      poly.map(([x, y]) => [x + dx, y + dy] as Point),
      SHADOW,
      { alpha: 0.45, texture: 0 },
    );
  }

  /** A straight line through (px, py) at `angle`, long enough to cross the image. */
  crossingLine(px: number, py: number, angle: number, wiggle = 0): Point[] {
    const d = Math.hypot(this.w, this.h);
    const n = wiggle > 0 ? 8 : 1;
    const out: Point[] = [];
    const phase = this.rng.range(0, Math.PI * 2);
    const freq = this.rng.range(1, 2.5);
    for (let i = 0; i <= n; i++) {
      const t = -d + (2 * d * i) / n;
      const off = wiggle * Math.sin(phase + (freq * Math.PI * i) / n * 2);
      out.push([px + Math.cos(angle) * t - Math.sin(angle) * off, py + Math.sin(angle) * t + Math.cos(angle) * off]);
    }
    return out;
  }
}

// ---- object painters: each draws one object and records it in the scene graph ----

function road(b: SceneBuilder, line: Point[], width: number, colour: ColourName): SceneObject | null {
  const outline = bufferPolyline(line, width);
  b.raster.strokeLine(line, width, PALETTE[colour], { texture: 0.08 });
  b.block(bufferPolyline(line, width + 2 * b.s));
  return b.add('road', outline, colour, { width }, line);
}

function river(b: SceneBuilder, line: Point[], width: number, colour: ColourName): SceneObject | null {
  b.raster.strokeLine(line, width + 3 * b.s, PALETTE.brown, { texture: 0.2 });
  b.raster.strokeLine(line, width, PALETTE[colour], { texture: 0.1 });
  b.block(bufferPolyline(line, width + 3 * b.s));
  return b.add('river', bufferPolyline(line, width), colour, { width }, line);
}

function blob(b: SceneBuilder, cx: number, cy: number, r: number, n = 24): Point[] {
  const k = [b.rng.range(0, 0.15), b.rng.range(0, 0.12), b.rng.range(0, 0.08)];
  const ph = [b.rng.range(0, 6.3), b.rng.range(0, 6.3), b.rng.range(0, 6.3)];
  const out: Point[] = [];
  for (let i = 0; i < n; i++) {
    const a = (i / n) * Math.PI * 2;
    const rr = r * (1 + k[0] * Math.sin(2 * a + ph[0]) + k[1] * Math.sin(3 * a + ph[1]) + k[2] * Math.sin(5 * a + ph[2]));
    out.push([cx + rr * Math.cos(a), cy + rr * Math.sin(a)]);
  }
  return out;
}

function water(b: SceneBuilder, cls: 'lake' | 'pond', outline: Point[], colour: ColourName): SceneObject | null {
  const shore = outline.map(([x, y]) => {
    const [cx, cy] = outline.reduce(([ax, ay], [px, py]) => [ax + px / outline.length, ay + py / outline.length], [0, 0]);
    return [cx + (x - cx) * 1.08, cy + (y - cy) * 1.08] as Point;
  });
  b.raster.fillPolygon(shore, PALETTE.brown, { texture: 0.2 });
  b.raster.fillPolygon(outline, PALETTE[colour], { texture: 0.1 });
  b.block(shore.map(([x, y]) => [x, y] as Point));
  return b.add(cls, outline, colour);
}

function building(b: SceneBuilder, poly: Point[], colour: ColourName, flat: boolean, height: number): void {
  b.shadow(poly, height);
  const base = PALETTE[colour];
  b.raster.fillPolygon(poly, base, { texture: 0.06 });
  if (!flat) {
    // A gable roof: the half away from the sun is darker, which is what makes roofs read as 3-D.
    const [p0, p1, p2, p3] = poly;
    const long = Math.hypot(p1[0] - p0[0], p1[1] - p0[1]) >= Math.hypot(p2[0] - p1[0], p2[1] - p1[1]);
    const mid = (a: Point, c: Point): Point => [(a[0] + c[0]) / 2, (a[1] + c[1]) / 2];
    const half = long ? [p0, p1, mid(p1, p2), mid(p3, p0)] : [p1, p2, mid(p2, p3), mid(p0, p1)];
    b.raster.fillPolygon(half, [base[0] * 0.72, base[1] * 0.72, base[2] * 0.72], { texture: 0.06 });
  } else {
    const [cx, cy] = poly.reduce(([ax, ay], [x, y]) => [ax + x / 4, ay + y / 4], [0, 0]);
    const inner = poly.map(([x, y]) => [cx + (x - cx) * 0.8, cy + (y - cy) * 0.8] as Point);
    b.raster.fillPolygon(inner, [base[0] * 0.92, base[1] * 0.92, base[2] * 0.92], { texture: 0.04 });
  }
  b.block(poly);
  b.add('building', poly, colour, { roof: flat ? 'flat' : 'gable', height: Math.round(height * 10) / 10 });
}

function placeBuildings(
  b: SceneBuilder,
  count: number,
  size: [number, number],
  colours: readonly ColourName[],
  flatShare: number,
  jitter: number,
): void {
  for (let i = 0; i < count; i++) {
    const w = b.rng.range(size[0], size[1]) * b.s;
    const h = w * b.rng.range(0.6, 0.95);
    const a = b.angle + b.rng.range(-jitter, jitter) + (b.rng.chance(0.3) ? Math.PI / 2 : 0);
    const poly = b.place((cx, cy) => rotatedRect(cx, cy, w, h, a), 1.35);
    if (poly) building(b, poly, b.rng.pick(colours), b.rng.chance(flatShare), b.rng.range(2, 5) * b.s);
  }
}

function tree(b: SceneBuilder, cx: number, cy: number, r: number, colour: ColourName): void {
  const crown = circlePolygon(cx, cy, r, 10);
  b.shadow(crown, r * 1.2);
  const base = PALETTE[colour];
  b.raster.fillCircle(cx, cy, r, base, { texture: 0.35 });
  // Lumps on the crown so trees are not flat discs.
  for (let k = 0; k < 3; k++) {
    const a = b.rng.range(0, Math.PI * 2);
    b.raster.fillCircle(cx + Math.cos(a) * r * 0.4, cy + Math.sin(a) * r * 0.4, r * 0.45, [base[0] * 1.2, base[1] * 1.2, base[2] * 1.15], {
      alpha: 0.6,
      texture: 0.3,
    });
  }
  b.block(crown);
  b.add('tree', crown, colour, { radius: Math.round(r * 10) / 10 });
}

function placeTrees(b: SceneBuilder, count: number, radius: [number, number], pad = 1.2, near?: () => Point): void {
  for (let i = 0; i < count; i++) {
    const r = b.rng.range(radius[0], radius[1]) * b.s;
    const poly = b.place((cx, cy) => circlePolygon(cx, cy, r, 10), pad, 25, near);
    if (poly) {
      const [cx, cy] = poly.reduce(([ax, ay], [x, y]) => [ax + x / poly.length, ay + y / poly.length], [0, 0]);
      tree(b, cx, cy, r, b.rng.pick(['green', 'dark green', 'dark green'] as const));
    }
  }
}

const CAR_COLOURS: readonly ColourName[] = ['white', 'black', 'red', 'blue', 'grey', 'silver', 'white'];

function car(b: SceneBuilder, cx: number, cy: number, heading: number, colour: ColourName): void {
  const poly = rotatedRect(cx, cy, 6 * b.s, 3 * b.s, heading);
  if (!poly.every(([x, y]) => x >= 0 && y >= 0 && x <= b.w && y <= b.h)) return;
  b.shadow(poly, 1.2 * b.s);
  b.raster.fillPolygon(poly, PALETTE[colour], { texture: 0.05 });
  b.raster.fillPolygon(rotatedRect(cx, cy, 2 * b.s, 2.4 * b.s, heading), [40, 45, 55], { alpha: 0.5, texture: 0 });
  b.block(poly);
  b.add('car', poly, colour, { heading: Math.round(heading * 100) / 100 });
}

/** Cars in the lanes of a road, spaced along its centre line. */
function carsOnRoad(b: SceneBuilder, r: SceneObject | null, count: number): void {
  if (!r?.line || count <= 0) return;
  const [p, q] = [r.line[0], r.line[r.line.length - 1]];
  const heading = Math.atan2(q[1] - p[1], q[0] - p[0]);
  const lane = Number(r.attributes.width) / 4;
  const slots = b.rng.shuffle(Array.from({ length: 14 }, (_, i) => i));
  for (const slot of slots.slice(0, count)) {
    const t = 0.3 + (slot / 14) * 0.4 + b.rng.range(-0.01, 0.01);
    const side = slot % 2 === 0 ? 1 : -1;
    const cx = p[0] + (q[0] - p[0]) * t - Math.sin(heading) * lane * side;
    const cy = p[1] + (q[1] - p[1]) * t + Math.cos(heading) * lane * side;
    car(b, cx, cy, heading, b.rng.pick(CAR_COLOURS));
  }
}

function boat(b: SceneBuilder, on: SceneObject, count: number): void {
  for (let i = 0; i < count; i++) {
    const len = b.rng.range(6, 10) * b.s;
    const heading = b.rng.range(0, Math.PI * 2);
    for (let t = 0; t < 30; t++) {
      const [cx, cy] = [b.rng.range(on.box[0], on.box[2]), b.rng.range(on.box[1], on.box[3])];
      const poly = placeShape(BOAT, cx, cy, len, heading);
      const hull = placeShape(BOAT, cx, cy, len * 1.6, heading);
      if (!hull.every((p) => pointInPolygon(p, on.polygon))) continue;
      // Water is blocked for land objects, so boats only keep clear of other boats.
      const box = boundingBox(hull, b.w, b.h);
      if (b.objects.some((o) => o.class === 'boat' && boxGap(o.box, box) < 2 * b.s)) continue;
      const colour = b.rng.pick(['white', 'white', 'red', 'blue'] as const);
      const wake = placeShape([[-0.5, 0], [-1.6, 0]], cx, cy, len, heading);
      b.raster.strokeLine(wake, 1.5 * b.s, [200, 215, 225], { alpha: 0.5, texture: 0 });
      b.raster.fillPolygon(poly, PALETTE[colour], { texture: 0.05 });
      b.add('boat', poly, colour, { heading: Math.round(heading * 100) / 100, length: Math.round(len) });
      break;
    }
  }
}

// ---- scene classes ----

type Painter = (b: SceneBuilder) => void;

const GRASS: Rgb = [95, 125, 70];
const ROAD_COLOURS: readonly ColourName[] = ['grey', 'dark grey'];

const PAINTERS: Record<SceneClass, Painter> = {
  dense_residential(b) {
    b.background([150, 140, 125], 0.2);
    const roads = [road(b, b.crossingLine(b.w * b.rng.range(0.3, 0.7), b.h * b.rng.range(0.3, 0.7), b.angle), 7 * b.s, b.rng.pick(ROAD_COLOURS))];
    if (b.rng.chance(0.6)) {
      roads.push(road(b, b.crossingLine(b.w / 2, b.h / 2, b.angle + Math.PI / 2), 6 * b.s, b.rng.pick(ROAD_COLOURS)));
    }
    placeBuildings(b, b.rng.int(18, 34), [8, 14], ['red', 'grey', 'brown', 'white', 'orange', 'red'], 0.2, 0.08);
    placeTrees(b, b.rng.int(2, 8), [2, 3.5]);
    for (const r of roads) carsOnRoad(b, r, b.rng.int(0, 5));
  },
  sparse_residential(b) {
    b.background(GRASS, 0.25);
    const r = road(b, b.crossingLine(b.w * b.rng.range(0.3, 0.7), b.h / 2, b.angle, 6 * b.s), 5.5 * b.s, b.rng.pick(ROAD_COLOURS));
    if (b.rng.chance(0.25)) {
      const c = b.place((x, y) => blob(b, x, y, 10 * b.s), 1.2);
      if (c) water(b, 'pond', c, 'blue');
    }
    placeBuildings(b, b.rng.int(3, 8), [10, 16], ['red', 'grey', 'brown', 'white'], 0.15, 0.3);
    placeTrees(b, b.rng.int(8, 20), [2.5, 4.5]);
    carsOnRoad(b, r, b.rng.int(0, 3));
  },
  farmland(b) {
    b.background([120, 110, 80], 0.2);
    const width = b.rng.range(12, 26) * b.s;
    const d = Math.hypot(b.w, b.h);
    const [nx, ny] = [-Math.sin(b.angle), Math.cos(b.angle)];
    for (let t = -d / 2; t < d / 2; t += width) {
      const cx = b.w / 2 + nx * (t + width / 2);
      const cy = b.h / 2 + ny * (t + width / 2);
      const strip = rotatedRect(cx, cy, d * 1.2, width - 1.5 * b.s, b.angle);
      const colour = b.rng.pick(['green', 'light green', 'yellow', 'brown', 'light green'] as const);
      const clipped = clipToRect(strip, b.w, b.h);
      if (clipped.length < 3 || polygonArea(clipped) < 40 * b.s * b.s) continue;
      b.raster.fillPolygon(strip, PALETTE[colour], { texture: 0.12 });
      // Furrows: thin darker lines along the strip.
      for (let f = -width / 2 + 2 * b.s; f < width / 2 - b.s; f += 2.5 * b.s) {
        b.raster.strokeLine(
          [
            [cx + nx * f - Math.cos(b.angle) * d, cy + ny * f - Math.sin(b.angle) * d],
            [cx + nx * f + Math.cos(b.angle) * d, cy + ny * f + Math.sin(b.angle) * d],
          ],
          0.6 * b.s,
          [0, 0, 0],
          { alpha: 0.12, texture: 0 },
        );
      }
      b.add('field', strip, colour, { crop: colour === 'brown' ? 'ploughed' : 'crop' });
    }
    if (b.rng.chance(0.4)) road(b, b.crossingLine(b.w * b.rng.range(0.2, 0.8), b.h / 2, b.angle + Math.PI / 2), 4 * b.s, 'brown');
    placeTrees(b, b.rng.int(0, 4), [2.5, 4]);
  },
  forest(b) {
    b.background([45, 70, 40], 0.3);
    if (b.rng.chance(0.3)) road(b, b.crossingLine(b.w / 2, b.h * b.rng.range(0.3, 0.7), b.angle, 8 * b.s), 4 * b.s, 'brown');
    placeTrees(b, b.rng.int(45, 85), [3, 5.5], 0.8);
  },
  river(b) {
    b.background(GRASS, 0.25);
    const line = b.crossingLine(b.w * b.rng.range(0.35, 0.65), b.h * b.rng.range(0.35, 0.65), b.angle, b.rng.range(6, 14) * b.s);
    const rv = river(b, line, b.rng.range(10, 20) * b.s, b.rng.pick(['blue', 'dark blue', 'brown'] as const));
    const centre = (): Point => {
      const i = b.rng.int(0, line.length - 2);
      const t = b.rng.next();
      const [p, q] = [line[i], line[i + 1]];
      const off = b.rng.range(10, 16) * b.s * (b.rng.chance(0.5) ? 1 : -1);
      const len = Math.hypot(q[0] - p[0], q[1] - p[1]) || 1;
      return [p[0] + (q[0] - p[0]) * t - ((q[1] - p[1]) / len) * off, p[1] + (q[1] - p[1]) * t + ((q[0] - p[0]) / len) * off];
    };
    placeTrees(b, b.rng.int(6, 16), [2.5, 4.5], 1.1, centre);
    if (rv) boat(b, rv, b.rng.int(0, 2));
    placeBuildings(b, b.rng.int(0, 2), [9, 13], ['red', 'grey', 'white'], 0.2, 0.3);
  },
  lake(b) {
    b.background(GRASS, 0.25);
    const [lx, ly] = [b.w * b.rng.range(0.42, 0.58), b.h * b.rng.range(0.42, 0.58)];
    const outline = blob(b, lx, ly, b.rng.range(26, 38) * b.s);
    const lk = water(b, 'lake', outline, b.rng.pick(['blue', 'dark blue'] as const));
    const ring = (): Point => {
      const a = b.rng.range(0, Math.PI * 2);
      const r = b.rng.range(40, 58) * b.s;
      return [b.w / 2 + Math.cos(a) * r, b.h / 2 + Math.sin(a) * r];
    };
    placeTrees(b, b.rng.int(10, 24), [2.5, 4.5], 1.1, ring);
    if (lk) boat(b, lk, b.rng.int(0, 3));
  },
  beach(b) {
    b.background([215, 200, 160], 0.15);
    const side = b.rng.int(0, 3);
    const depth = b.rng.range(0.35, 0.55);
    const coast: Point[] = [];
    const n = 16;
    const ph = b.rng.range(0, 6.3);
    for (let i = 0; i <= n; i++) {
      const u = i / n;
      const v = depth + 0.05 * Math.sin(ph + u * 7);
      const points: Point[] = [[u * b.w, v * b.h], [u * b.w, (1 - v) * b.h], [v * b.w, u * b.h], [(1 - v) * b.w, u * b.h]];
      coast.push(points[side]);
    }
    const corners: Point[][] = [
      [[b.w, 0], [0, 0]],
      [[b.w, b.h], [0, b.h]],
      [[0, b.h], [0, 0]],
      [[b.w, b.h], [b.w, 0]],
    ];
    const seaPoly = [...coast, ...corners[side]];
    b.raster.strokeLine(coast, 8 * b.s, [185, 170, 135], { texture: 0.1 });
    b.raster.fillPolygon(seaPoly, PALETTE[b.rng.pick(['blue', 'dark blue'] as const)], { texture: 0.12 });
    b.raster.strokeLine(coast, 2 * b.s, [235, 240, 240], { alpha: 0.7, texture: 0 });
    b.block(seaPoly);
    b.block(bufferPolyline(coast, 8 * b.s));
    const sea = b.add('sea', seaPoly, 'blue', { side: ['top', 'bottom', 'left', 'right'][side] });
    if (sea) boat(b, sea, b.rng.int(1, 4));
    placeTrees(b, b.rng.int(0, 4), [2.5, 4]);
    placeBuildings(b, b.rng.int(0, 3), [9, 13], ['white', 'red', 'orange'], 0.3, 0.3);
  },
  parking_lot(b) {
    b.background([95, 95, 98], 0.1);
    const rows = b.rng.int(3, 5);
    const fill = b.rng.range(0.45, 0.95);
    const [ux, uy] = [Math.cos(b.angle), Math.sin(b.angle)];
    const [nx, ny] = [-uy, ux];
    const rowGap = 20 * b.s;
    const stall = 4.2 * b.s;
    for (let r = 0; r < rows; r++) {
      const off = (r - (rows - 1) / 2) * rowGap;
      for (let k = -14; k <= 14; k++) {
        const cx = b.w / 2 + nx * off + ux * k * stall;
        const cy = b.h / 2 + ny * off + uy * k * stall;
        const [mx, my] = [cx - (ux * stall) / 2, cy - (uy * stall) / 2];
        const mark: Point[] = [
          [mx - nx * 4 * b.s, my - ny * 4 * b.s],
          [mx + nx * 4 * b.s, my + ny * 4 * b.s],
        ];
        b.raster.strokeLine(mark, 0.7 * b.s, [220, 220, 215], { texture: 0 });
        if (b.rng.chance(fill)) car(b, cx, cy, b.angle + Math.PI / 2, b.rng.pick(CAR_COLOURS));
      }
    }
  },
  airport(b) {
    b.background([120, 135, 90], 0.2);
    const off = b.rng.range(-0.15, 0.15) * b.h;
    const [nx, ny] = [-Math.sin(b.angle), Math.cos(b.angle)];
    const line = b.crossingLine(b.w / 2 + nx * off, b.h / 2 + ny * off, b.angle);
    const width = b.rng.range(12, 16) * b.s;
    b.raster.strokeLine(line, width, PALETTE.grey, { texture: 0.06 });
    for (let t = -12; t <= 12; t++) {
      const [cx, cy] = [b.w / 2 + nx * off + Math.cos(b.angle) * t * 8 * b.s, b.h / 2 + ny * off + Math.sin(b.angle) * t * 8 * b.s];
      b.raster.fillPolygon(rotatedRect(cx, cy, 4 * b.s, 0.8 * b.s, b.angle), PALETTE.white, { texture: 0 });
    }
    b.block(bufferPolyline(line, width + 4 * b.s));
    b.add('runway', bufferPolyline(line, width), 'grey', { width }, line);
    // The apron lies on one side of the runway; planes park there.
    const side = b.rng.chance(0.5) ? 1 : -1;
    const apronOff = off + side * (width / 2 + 22 * b.s);
    const apron = rotatedRect(b.w / 2 + nx * apronOff, b.h / 2 + ny * apronOff, Math.hypot(b.w, b.h) * 1.5, 34 * b.s, b.angle);
    b.raster.fillPolygon(apron, [165, 165, 160], { texture: 0.05 });
    const terminalOff = apronOff + side * 22 * b.s;
    const shift = b.rng.range(-30, 30) * b.s;
    const [tx, ty] = [b.w / 2 + nx * terminalOff + Math.cos(b.angle) * shift, b.h / 2 + ny * terminalOff + Math.sin(b.angle) * shift];
    const term = rotatedRect(tx, ty, 40 * b.s, 12 * b.s, b.angle);
    if (b.isFree(term)) building(b, term, b.rng.pick(['white', 'grey'] as const), true, 4 * b.s);
    const planes = b.rng.int(1, 4);
    for (let i = 0; i < planes; i++) {
      const len = b.rng.range(18, 26) * b.s;
      const heading = b.angle + side * Math.PI / 2 + b.rng.range(-0.3, 0.3);
      const poly = b.place(
        (cx, cy) => placeShape(AIRPLANE, cx, cy, len, heading),
        1.15,
        30,
        () => {
          const t = b.rng.range(-45, 45) * b.s;
          return [b.w / 2 + nx * apronOff + Math.cos(b.angle) * t, b.h / 2 + ny * apronOff + Math.sin(b.angle) * t];
        },
      );
      if (!poly) continue;
      const colour = b.rng.pick(['white', 'white', 'silver', 'grey'] as const);
      b.shadow(poly, 3 * b.s);
      b.raster.fillPolygon(poly, PALETTE[colour], { texture: 0.03 });
      b.block(poly);
      b.add('airplane', poly, colour, { heading: Math.round(heading * 100) / 100, length: Math.round(len) });
    }
  },
  industrial(b) {
    b.background([150, 148, 140], 0.2);
    const roads = [road(b, b.crossingLine(b.w * b.rng.range(0.25, 0.75), b.h * b.rng.range(0.25, 0.75), b.angle), 8 * b.s, 'dark grey')];
    if (b.rng.chance(0.4)) roads.push(road(b, b.crossingLine(b.w / 2, b.h / 2, b.angle + Math.PI / 2), 7 * b.s, 'dark grey'));
    placeBuildings(b, b.rng.int(3, 8), [16, 30], ['white', 'grey', 'blue', 'dark grey', 'white'], 0.9, 0.02);
    const tanks = b.rng.chance(0.7) ? b.rng.int(1, 6) : 0;
    for (let i = 0; i < tanks; i++) {
      const r = b.rng.range(4, 8) * b.s;
      const poly = b.place((cx, cy) => circlePolygon(cx, cy, r, 16), 1.2);
      if (!poly) continue;
      const [cx, cy] = poly.reduce(([ax, ay], [x, y]) => [ax + x / poly.length, ay + y / poly.length], [0, 0]);
      const colour = b.rng.pick(['white', 'silver', 'grey'] as const);
      b.shadow(poly, r * 0.8);
      b.raster.fillCircle(cx, cy, r, PALETTE[colour], { texture: 0.03 });
      b.raster.fillCircle(cx - b.sun[0] * r * 0.3, cy - b.sun[1] * r * 0.3, r * 0.55, [255, 255, 255], { alpha: 0.25, texture: 0 });
      b.block(poly);
      b.add('storage_tank', poly, colour, { radius: Math.round(r * 10) / 10 });
    }
    for (const r of roads) carsOnRoad(b, r, b.rng.int(0, 4));
  },
  meadow(b) {
    b.background([120, 150, 80], 0.3);
    if (b.rng.chance(0.3)) {
      const c = b.place((x, y) => blob(b, x, y, b.rng.range(8, 14) * b.s), 1.2);
      if (c) water(b, 'pond', c, 'blue');
    }
    placeTrees(b, b.rng.int(0, 6), [2.5, 5]);
  },
  bare_land(b) {
    b.background([170, 140, 105], 0.35);
    if (b.rng.chance(0.5)) road(b, b.crossingLine(b.w * b.rng.range(0.3, 0.7), b.h / 2, b.angle, 10 * b.s), 4 * b.s, 'brown');
    placeTrees(b, b.rng.int(0, 3), [2, 3.5]);
  },
};

/** Object classes a change pair may add or remove. */
export type ChangeableClass = 'building' | 'tree' | 'car';

/** Extra objects painted over a finished scene, so that the scene without them is pixel-identical. */
export interface SceneAdditions {
  objectClass: ChangeableClass;
  count: number;
}

function paintAdditions(b: SceneBuilder, additions: SceneAdditions): void {
  if (additions.objectClass === 'building') placeBuildings(b, additions.count, [9, 14], ['red', 'white', 'grey', 'blue'], 0.3, 0.1);
  else if (additions.objectClass === 'tree') placeTrees(b, additions.count, [3, 4.5]);
  else {
    for (let i = 0; i < additions.count; i++) {
      const heading = b.angle + Math.PI / 2;
      const poly = b.place((cx, cy) => rotatedRect(cx, cy, 6 * b.s, 3 * b.s, heading), 1.5);
      if (!poly) continue;
      const [cx, cy] = poly.reduce(([ax, ay], [x, y]) => [ax + x / 4, ay + y / 4], [0, 0]);
      car(b, cx, cy, heading, b.rng.pick(CAR_COLOURS));
    }
  }
}

/** Draws one aerial scene and its scene graph; the same options always give the same bytes. */
export function generateScene(options: GenerateSceneOptions): Scene {
  return generateSceneWith(options);
}

/** `generateScene`, optionally with objects added last (for change pairs). */
export function generateSceneWith(options: GenerateSceneOptions, additions?: SceneAdditions): Scene {
  const size = options.size ?? DEFAULT_SIZE;
  if (!Number.isInteger(size) || size < 32 || size > 4096) {
    throw new InvalidSceneOptionsError(`size must be an integer in [32, 4096], got ${size}`);
  }
  if (!Number.isFinite(options.seed)) throw new InvalidSceneOptionsError(`seed must be a finite number, got ${options.seed}`);
  if (options.sceneClass !== undefined && !SCENE_CLASSES.includes(options.sceneClass)) {
    throw new InvalidSceneOptionsError(`unknown scene class: ${String(options.sceneClass)}`);
  }
  const rng = new Random(options.seed);
  const sceneClass = options.sceneClass ?? rng.pick(SCENE_CLASSES);
  const b = new SceneBuilder(rng.fork(1), size, size, size / DEFAULT_SIZE, rng.range(0, Math.PI));
  PAINTERS[sceneClass](b);
  if (additions && additions.count > 0) paintAdditions(b, additions);
  const light = rng.range(0.8, 1.15);
  const gain: Rgb = [light * rng.range(0.95, 1.05), light * rng.range(0.95, 1.05), light * rng.range(0.95, 1.05)];
  return {
    seed: options.seed,
    sceneClass,
    width: size,
    height: size,
    metresPerPixel: SCENE_METRES / size,
    rgb: b.raster.toBytes(gain, rng.fork(2), 6),
    objects: b.objects,
  };
}
