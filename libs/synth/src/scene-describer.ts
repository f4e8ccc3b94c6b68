import { boxCentre, polygonArea } from './geometry';
import { Random } from './random';
import { computeRelations, type Relation } from './relations';
import { OBJECT_CLASSES, type ColourName, type ObjectClass, type Scene, type SceneClass, type SceneObject } from './scene.types';

export const VQA_TYPES = ['presence', 'count', 'comparison', 'rural_urban', 'area'] as const;
export type VqaType = (typeof VQA_TYPES)[number];

export interface VqaPair {
  question: string;
  answer: string;
  type: VqaType;
}

export interface SceneDescription {
  /** Aspect captions, each one or more sentences in the style "there are 5 cars ." */
  theme: string;
  objects: string;
  relations: string;
  /** Five full captions (theme → objects → relations), each worded differently. */
  references: string[];
  vqa: VqaPair[];
  /** The relations the text was written from. */
  relationFacts: Relation[];
}

export const SCENE_NAMES: Record<SceneClass, string> = {
  dense_residential: 'dense residential area',
  sparse_residential: 'sparse residential area',
  farmland: 'farmland',
  forest: 'forest',
  river: 'river',
  lake: 'lake',
  beach: 'beach',
  parking_lot: 'parking lot',
  airport: 'airport',
  industrial: 'industrial area',
  meadow: 'meadow',
  bare_land: 'bare land',
};

export const URBAN_SCENES: ReadonlySet<SceneClass> = new Set(['dense_residential', 'parking_lot', 'airport', 'industrial']);

export const NOUNS: Record<ObjectClass, [singular: string, plural: string]> = {
  sea: ['sea', 'seas'],
  lake: ['lake', 'lakes'],
  river: ['river', 'rivers'],
  runway: ['runway', 'runways'],
  road: ['road', 'roads'],
  field: ['field', 'fields'],
  pond: ['pond', 'ponds'],
  building: ['building', 'buildings'],
  storage_tank: ['storage tank', 'storage tanks'],
  airplane: ['airplane', 'airplanes'],
  boat: ['boat', 'boats'],
  tree: ['tree', 'trees'],
  car: ['car', 'cars'],
};

const REFERENCE_COUNT = 5;

/** RSVQA-HR style area buckets, in square metres. */
export function areaBucket(m2: number): string {
  if (m2 <= 0) return '0m2';
  if (m2 <= 10) return 'between 0m2 and 10m2';
  if (m2 <= 100) return 'between 10m2 and 100m2';
  if (m2 <= 1000) return 'between 100m2 and 1000m2';
  return 'more than 1000m2';
}

/** Sum of the clipped polygon areas of one class, in m² (overlaps are counted twice). */
export function classArea(scene: Scene, cls: ObjectClass): number {
  const px = scene.objects.filter((o) => o.class === cls).reduce((sum, o) => sum + polygonArea(o.polygon), 0);
  return px * scene.metresPerPixel ** 2;
}

const POSITIONS = [
  ['top left', 'top', 'top right'],
  ['left', 'center', 'right'],
  ['bottom left', 'bottom', 'bottom right'],
] as const;

/** Position of a box centre on a 3 × 3 grid: "top left", "center", ... */
export function positionName(o: SceneObject, width: number, height: number): string {
  const [x, y] = boxCentre(o.box);
  const col = Math.min(2, Math.floor((x / width) * 3));
  const row = Math.min(2, Math.floor((y / height) * 3));
  return POSITIONS[row][col];
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

function joinAnd(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(' , ')} and ${items[items.length - 1]}`;
}

function dominantColours(items: readonly SceneObject[]): ColourName[] {
  const counts = new Map<ColourName, number>();
  for (const o of items) counts.set(o.colour, (counts.get(o.colour) ?? 0) + 1);
  const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return sorted.filter(([, n], i) => i === 0 || n >= items.length * 0.15).slice(0, 3).map(([c]) => c);
}

function direction(o: SceneObject): string {
  const line = o.line!;
  const [a, b] = [line[0], line[line.length - 1]];
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  if (Math.abs(dx) > 2 * Math.abs(dy)) return 'from the left to the right';
  if (Math.abs(dy) > 2 * Math.abs(dx)) return 'from the top to the bottom';
  return dx * dy > 0 ? 'from the top left to the bottom right' : 'from the bottom left to the top right';
}

const THEME_TEMPLATES: ((name: string) => string)[] = [
  (n) => `this is an aerial image of ${article(n)} .`,
  (n) => `the image shows ${article(n)} seen from above .`,
  (n) => `a top view of ${article(n)} .`,
  (n) => `this remote sensing image shows ${article(n)} .`,
  (n) => `it is ${article(n)} .`,
  (n) => `we can see ${article(n)} in this image .`,
];

/** One sentence about all objects of one class; the only number in it is the count. */
function objectSentence(scene: Scene, cls: ObjectClass, items: SceneObject[], v: number): string {
  const [sing, plural] = NOUNS[cls];
  const n = items.length;
  const colours = dominantColours(items);
  const colourWords = joinAnd(colours);
  if (cls === 'river' || cls === 'road' || cls === 'runway') {
    if (n === 1) {
      const way = direction(items[0]);
      return [
        `there is one ${colourWords} ${sing} running ${way} .`,
        `one ${sing} crosses the image ${way} .`,
        `a single ${colourWords} ${sing} goes ${way} .`,
      ][v % 3];
    }
    return [`there are ${n} ${plural} crossing the image .`, `${n} ${colourWords} ${plural} cross each other .`][v % 2];
  }
  if (cls === 'sea') {
    const side = String(items[0].attributes.side ?? positionName(items[0], scene.width, scene.height));
    return [`one ${colourWords} sea covers the ${side} part .`, `the ${side} of the image is one sea .`][v % 2];
  }
  const places = [...new Set(items.map((o) => positionName(o, scene.width, scene.height)))];
  if (n === 1) {
    return [
      `there is one ${colourWords} ${sing} at the ${places[0]} .`,
      `one ${sing} , ${colourWords} , is at the ${places[0]} .`,
      `a single ${colourWords} ${sing} can be seen at the ${places[0]} .`,
    ][v % 3];
  }
  let where: string;
  if (n <= 3) where = `at the ${joinAnd(places)}`;
  else {
    const counts = new Map<string, number>();
    for (const o of items) {
      const p = positionName(o, scene.width, scene.height);
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    const [top, k] = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
    where = k >= n * 0.6 ? `mostly at the ${top}` : cls === 'field' ? 'arranged in parallel strips' : 'spread over the image';
  }
  const mostly = items.every((o) => o.colour === items[0].colour) ? `all ${colourWords}` : `mostly ${colourWords}`;
  return [
    `there are ${n} ${plural} , ${mostly} , ${where} .`,
    `${n} ${plural} can be seen ${where} , ${mostly} .`,
    `the image contains ${n} ${plural} ${where} , ${mostly} in colour .`,
    `we can see ${n} ${plural} in ${colourWords} ${where} .`,
    `${n} ${plural} are ${where} , ${mostly} .`,
  ][v % 5];
}

function subjectPhrase(cls: ObjectClass, n: number, v: number): string {
  const [sing, plural] = NOUNS[cls];
  if (n === 1) return article(sing);
  if (n <= 3) return `the ${plural}`;
  return `${(n >= 8 ? ['some', 'many', 'several'] : ['some', 'a few', 'several'])[v % 3]} ${plural}`;
}

function relationSentence(r: Relation, v: number): string {
  const n = r.subjectIds.length;
  const subj = subjectPhrase(r.subject, n, v);
  const be = n === 1 ? 'is' : 'are';
  const [subjSing, subjPlural] = NOUNS[r.subject];
  const [obj, objPlural] = NOUNS[r.object];
  switch (r.predicate) {
    case 'on':
      return [`${subj} ${be} on the ${obj} .`, `there ${be} ${n === 1 ? article(subjSing) : subjPlural} on the ${obj} .`][v % 2];
    case 'along':
      return [
        `${subj} ${be} along the ${obj} .`,
        `the ${obj} is lined with ${subjPlural} .`,
        `${subj} ${be} beside the ${obj} .`,
      ][v % 3];
    case 'between':
      return [`the ${subjSing} runs between the ${objPlural} .`, `${objPlural} are on both sides of the ${subjSing} .`][v % 2];
    case 'surrounded_by':
      return [`the ${subjSing} is surrounded by ${objPlural} .`, `${objPlural} surround the ${subjSing} .`][v % 2];
    case 'next_to':
      return [`${subj} ${be} next to ${article(obj)} .`, `${subj} ${be} close to ${article(obj)} .`][v % 2];
    default: {
      const words = { left_of: 'to the left of', right_of: 'to the right of', above: 'above', below: 'below' }[r.predicate];
      return `the ${subjSing} is ${words} the ${obj} .`;
    }
  }
}

const EMPTY_OBJECTS = ['there are no distinct objects in the image .', 'no objects stand out in this image .'];
const EMPTY_RELATIONS = ['the ground is open and even .', 'nothing interrupts the open ground .'];

function groupByClass(scene: Scene): Map<ObjectClass, SceneObject[]> {
  const groups = new Map<ObjectClass, SceneObject[]>();
  for (const cls of OBJECT_CLASSES) {
    const items = scene.objects.filter((o) => o.class === cls);
    if (items.length > 0) groups.set(cls, items);
  }
  return groups;
}

function writeAspects(scene: Scene, groups: Map<ObjectClass, SceneObject[]>, relations: Relation[], v: number) {
  const theme = THEME_TEMPLATES[v % THEME_TEMPLATES.length](SCENE_NAMES[scene.sceneClass]);
  const objects =
    groups.size === 0
      ? EMPTY_OBJECTS[v % EMPTY_OBJECTS.length]
      : [...groups].map(([cls, items]) => objectSentence(scene, cls, items, v)).join(' ');
  // Relations of one predicate and class pair repeat for every road or lake; say each once.
  const seen = new Set<string>();
  const unique = relations.filter((r) => {
    const key = `${r.predicate}:${r.subject}:${r.object}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
  const chosen = unique.slice(0, 4);
  const relText = chosen.length === 0 ? EMPTY_RELATIONS[v % EMPTY_RELATIONS.length] : chosen.map((r) => relationSentence(r, v)).join(' ');
  return { theme, objects, relations: relText };
}

function writeVqa(scene: Scene, groups: Map<ObjectClass, SceneObject[]>, rng: Random): VqaPair[] {
  const count = (c: ObjectClass) => groups.get(c)?.length ?? 0;
  const present = [...groups.keys()];
  const absent = OBJECT_CLASSES.filter((c) => !groups.has(c));
  const out: VqaPair[] = [];
  if (present.length > 0) {
    const c = rng.pick(present);
    out.push({ question: `is there ${article(NOUNS[c][0])} in the image ?`, answer: 'yes', type: 'presence' });
  }
  const missing = rng.pick(absent);
  out.push({ question: `are there any ${NOUNS[missing][1]} ?`, answer: 'no', type: 'presence' });
  for (const c of rng.shuffle(present).slice(0, 2)) {
    out.push({ question: `how many ${NOUNS[c][1]} are there ?`, answer: String(count(c)), type: 'count' });
  }
  out.push({ question: `how many ${NOUNS[missing][1]} are in the image ?`, answer: '0', type: 'count' });
  // With fewer than two classes present, compare against absent ones (answers are then "no" / "yes").
  const pool = present.length >= 2 ? present : [...present, missing, rng.pick(absent.filter((c) => c !== missing))];
  const [a, b] = rng.shuffle(pool);
  out.push({
    question: `are there more ${NOUNS[a][1]} than ${NOUNS[b][1]} ?`,
    answer: count(a) > count(b) ? 'yes' : 'no',
    type: 'comparison',
  });
  out.push({
    question: `is the number of ${NOUNS[b][1]} equal to the number of ${NOUNS[a][1]} ?`,
    answer: count(a) === count(b) ? 'yes' : 'no',
    type: 'comparison',
  });
  const urban = URBAN_SCENES.has(scene.sceneClass);
  out.push({ question: 'is it a rural or an urban area ?', answer: urban ? 'urban' : 'rural', type: 'rural_urban' });
  const areaClass = groups.has('building') ? 'building' : present.length > 0 ? rng.pick(present) : missing;
  const area = areaBucket(classArea(scene, areaClass));
  out.push({ question: `what is the area covered by ${NOUNS[areaClass][1]} ?`, answer: area, type: 'area' });
  return out;
}

/** Aspect captions, five references and VQA pairs, all derived from the scene graph; deterministic by seed. */
export function describeScene(scene: Scene, seed: number): SceneDescription {
  const rng = new Random(seed ^ 0x5bd1e995);
  const groups = groupByClass(scene);
  const relationFacts = computeRelations(scene);
  const base = rng.int(0, 59);
  const aspects = writeAspects(scene, groups, relationFacts, base);
  const references = Array.from({ length: REFERENCE_COUNT }, (_, i) => {
    const a = writeAspects(scene, groups, relationFacts, base + i);
    return `${a.theme} ${a.objects} ${a.relations}`;
  });
  return { ...aspects, references, vqa: writeVqa(scene, groups, rng), relationFacts };
}
