import { boxCentre, boxGap, distanceToPolyline, pointInPolygon } from './geometry';
import type { ObjectClass, Point, Scene, SceneObject } from './scene.types';

export const RELATION_PREDICATES = [
  'on',
  'along',
  'between',
  'surrounded_by',
  'next_to',
  'left_of',
  'right_of',
  'above',
  'below',
] as const;
export type RelationPredicate = (typeof RELATION_PREDICATES)[number];

/** "subject predicate object", e.g. trees along river; ids index `Scene.objects`. */
export interface Relation {
  predicate: RelationPredicate;
  subject: ObjectClass;
  object: ObjectClass;
  subjectIds: number[];
  objectIds: number[];
}

/** Reference-layout pixels; multiplied by size / 128. */
const NEAR = 8;
const ALONG = 16;
const RING = 22;

const MOVERS: readonly ObjectClass[] = ['car', 'boat', 'airplane'];
const SURFACES: readonly ObjectClass[] = ['road', 'runway', 'river', 'lake', 'sea', 'pond'];
const LINEAR: readonly ObjectClass[] = ['road', 'river', 'runway'];
const LANDMARKS: readonly ObjectClass[] = ['building', 'storage_tank', 'airplane', 'pond', 'boat'];

/** Which side of the chord first→last point p lies on: 1 or -1. */
export function sideOfLine(p: Point, line: readonly Point[]): number {
  const [a, b] = [line[0], line[line.length - 1]];
  return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0 ? 1 : -1;
}

/** The axis relation of box a to box b, or null when the boxes overlap on both axes. */
export function directionOf(a: SceneObject, b: SceneObject): 'left_of' | 'right_of' | 'above' | 'below' | null {
  const gaps: [number, 'left_of' | 'right_of' | 'above' | 'below'][] = [
    [b.box[0] - a.box[2], 'left_of'],
    [a.box[0] - b.box[2], 'right_of'],
    [b.box[1] - a.box[3], 'above'],
    [a.box[1] - b.box[3], 'below'],
  ];
  const best = gaps.reduce((m, g) => (g[0] > m[0] ? g : m));
  return best[0] >= 0 ? best[1] : null;
}

/** Spatial relations computed from the scene graph alone (boxes, polygons and centre lines). */
export function computeRelations(scene: Scene): Relation[] {
  const s = scene.width / 128;
  const byClass = new Map<ObjectClass, SceneObject[]>();
  for (const o of scene.objects) byClass.set(o.class, [...(byClass.get(o.class) ?? []), o]);
  const of = (c: ObjectClass) => byClass.get(c) ?? [];
  const out: Relation[] = [];

  for (const subject of MOVERS) {
    for (const surface of SURFACES) {
      for (const target of of(surface)) {
        const ids = of(subject)
          .filter((o) => pointInPolygon(boxCentre(o.box), target.polygon))
          .map((o) => o.id);
        if (ids.length > 0) out.push({ predicate: 'on', subject, object: surface, subjectIds: ids, objectIds: [target.id] });
      }
    }
  }

  for (const lin of LINEAR) {
    for (const target of of(lin)) {
      if (!target.line) continue;
      const half = Number(target.attributes.width ?? 0) / 2;
      for (const subject of ['tree', 'building', 'airplane'] as const) {
        const reach = (subject === 'airplane' ? 45 : ALONG) * s;
        const near = of(subject).filter((o) => {
          const d = distanceToPolyline(boxCentre(o.box), target.line!);
          return d > half && d <= half + reach;
        });
        if (near.length >= (subject === 'airplane' ? 1 : 3)) {
          out.push({ predicate: 'along', subject, object: lin, subjectIds: near.map((o) => o.id), objectIds: [target.id] });
        }
      }
      for (const object of ['building', 'tree'] as const) {
        const sides = of(object).map((o) => sideOfLine(boxCentre(o.box), target.line!));
        if (sides.filter((v) => v > 0).length >= 2 && sides.filter((v) => v < 0).length >= 2) {
          out.push({ predicate: 'between', subject: lin, object, subjectIds: [target.id], objectIds: of(object).map((o) => o.id) });
          break;
        }
      }
    }
  }

  for (const water of ['lake', 'pond'] as const) {
    for (const target of of(water)) {
      const [cx, cy] = boxCentre(target.box);
      for (const object of ['tree', 'building'] as const) {
        const ring = of(object).filter((o) => boxGap(o.box, target.box) <= RING * s);
        const quadrants = new Set(ring.map((o) => quadrant(boxCentre(o.box), cx, cy)));
        if (quadrants.size >= 3) {
          out.push({ predicate: 'surrounded_by', subject: water, object, subjectIds: [target.id], objectIds: ring.map((o) => o.id) });
        }
      }
    }
  }

  // Pairwise relations only between classes with few members, where "the X" is unambiguous.
  const few = LANDMARKS.filter((c) => of(c).length >= 1 && of(c).length <= 3);
  for (let i = 0; i < few.length; i++) {
    for (let j = i + 1; j < few.length; j++) {
      for (const a of of(few[i])) {
        for (const b of of(few[j])) {
          if (boxGap(a.box, b.box) <= NEAR * s) {
            out.push({ predicate: 'next_to', subject: a.class, object: b.class, subjectIds: [a.id], objectIds: [b.id] });
          } else if (of(few[i]).length === 1 && of(few[j]).length === 1) {
            const dir = directionOf(a, b);
            if (dir) out.push({ predicate: dir, subject: a.class, object: b.class, subjectIds: [a.id], objectIds: [b.id] });
          }
        }
      }
    }
  }
  return out;
}

function quadrant([x, y]: Point, cx: number, cy: number): number {
  return (x < cx ? 0 : 1) + (y < cy ? 0 : 2);
}
