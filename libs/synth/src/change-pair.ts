import { Random } from './random';
import { NOUNS, positionName } from './scene-describer';
import { generateSceneWith, type ChangeableClass } from './scene-generator';
import type { GenerateSceneOptions, Scene, SceneClass } from './scene.types';

export type ChangeKind = 'added' | 'removed' | 'none';

/** Two views of the same place; `after` differs from `before` only by the changed objects. */
export interface ChangePair {
  before: Scene;
  after: Scene;
  change: {
    kind: ChangeKind;
    objectClass: ChangeableClass | null;
    /** Ids in `after` for added objects, in `before` for removed ones. */
    objectIds: number[];
  };
  /** e.g. "3 new buildings appear at the top left and center ." */
  caption: string;
}

export interface ChangePairOptions extends GenerateSceneOptions {
  /** Default: drawn from the seed (40% added, 40% removed, 20% none). */
  kind?: ChangeKind;
}

const CHANGE_CLASS: Record<SceneClass, ChangeableClass> = {
  dense_residential: 'building',
  sparse_residential: 'building',
  farmland: 'tree',
  forest: 'tree',
  river: 'tree',
  lake: 'tree',
  beach: 'tree',
  parking_lot: 'car',
  airport: 'building',
  industrial: 'building',
  meadow: 'tree',
  bare_land: 'building',
};

/** A change-captioning pair: the scene with objects added or removed, and a caption of the change. */
export function generateChangePair(options: ChangePairOptions): ChangePair {
  const rng = new Random(options.seed ^ 0x2c1b3c6d);
  const base = generateSceneWith(options);
  const kind = options.kind ?? (rng.chance(0.2) ? 'none' : rng.chance(0.5) ? 'added' : 'removed');
  if (kind === 'none') {
    const v = rng.int(0, 2);
    const caption = ['nothing has changed .', 'the two images are the same .', 'no change is found .'][v];
    return { before: base, after: base, change: { kind, objectClass: null, objectIds: [] }, caption };
  }
  const objectClass = CHANGE_CLASS[base.sceneClass];
  const extended = generateSceneWith({ ...options, sceneClass: base.sceneClass }, { objectClass, count: rng.int(1, 4) });
  const changed = extended.objects.slice(base.objects.length).filter((o) => o.class === objectClass);
  const [before, after] = kind === 'added' ? [base, extended] : [extended, base];
  if (changed.length === 0) {
    return { before, after, change: { kind: 'none', objectClass: null, objectIds: [] }, caption: 'nothing has changed .' };
  }
  const [sing, plural] = NOUNS[objectClass];
  const n = changed.length;
  const noun = n === 1 ? `one ${sing}` : `${n} ${plural}`;
  const places = [...new Set(changed.map((o) => positionName(o, extended.width, extended.height)))];
  const where = places.length === 1 ? places[0] : `${places.slice(0, -1).join(' , ')} and ${places[places.length - 1]}`;
  const have = n === 1 ? 'has' : 'have';
  const caption =
    kind === 'added'
      ? rng.pick([`${noun} ${have} been added at the ${where} .`, `${n === 1 ? `one new ${sing} appears` : `${n} new ${plural} appear`} at the ${where} .`])
      : rng.pick([`${noun} ${have} been removed from the ${where} .`, `${noun} at the ${where} ${have} disappeared .`]);
  return { before, after, change: { kind, objectClass, objectIds: changed.map((o) => o.id) }, caption };
}
