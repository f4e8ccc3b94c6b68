import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateChangePair } from './change-pair';
import { encodePng } from './png-encoder';
import { Random } from './random';
import { describeScene, type VqaType } from './scene-describer';
import { generateScene } from './scene-generator';
import { SCENE_CLASSES, type Point, type SceneClass } from './scene.types';

export type SplitName = 'train' | 'val' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

/** Fractions of the images per split; they must add up to 1. */
export interface SplitFractions {
  train: number;
  val: number;
  test: number;
}

export interface SynthProgress {
  /** Images (including their change pair, if any) fully written. */
  done: number;
  total: number;
}

export interface WriteSyntheticDatasetOptions {
  outDir: string;
  /** Number of images, ≥ 1. */
  count: number;
  /** Dataset seed (an integer in [0, 2^32)); image i is drawn from `imageSeed(seed, i)`. */
  seed: number;
  /** Image width and height in pixels; default 128. */
  size?: number;
  /** Default 0.8 / 0.1 / 0.1. */
  splits?: SplitFractions;
  /** Images in flight at once (generation on the main thread, PNG encoding on sharp's threads); default 16. */
  concurrency?: number;
  /** One change pair per this many images (for images 0, n, 2n, ...); default 20; 0 for none. */
  changePairEvery?: number;
  onProgress?: (progress: SynthProgress) => void;
}

export interface SyntheticDatasetSummary {
  outDir: string;
  count: number;
  seed: number;
  size: number;
  perSplit: Record<SplitName, number>;
  perClass: Record<SceneClass, number>;
  questions: number;
  changePairs: number;
  files: string[];
}

/** File names written under outDir. */
export const SYNTH_FILES = {
  images: 'images',
  karpathy: 'dataset_synth.json',
  questions: 'synth_questions.json',
  answers: 'synth_answers.json',
  imagesIndex: 'synth_images.json',
  sceneGraphs: 'scene_graphs.jsonl',
  changePairs: 'change_pairs',
  changePairIndex: 'change_pairs/change_pairs.json',
} as const;

/** RSVQA's names for the question types (its files say `comp`, not `comparison`). */
export const RSVQA_TYPE_NAMES: Record<VqaType, string> = {
  presence: 'presence',
  count: 'count',
  comparison: 'comp',
  rural_urban: 'rural_urban',
  area: 'area',
};

/** A seed for image `index` of the dataset with seed `seed` (a 32-bit hash of both, murmur3 finaliser). */
export function imageSeed(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Raised for options that can never produce a dataset. */
export class InvalidDatasetOptionsError extends Error {
  override readonly name = 'InvalidDatasetOptionsError';
}

function validate(options: WriteSyntheticDatasetOptions): Required<Omit<WriteSyntheticDatasetOptions, 'onProgress'>> {
  const { count, seed } = options;
  const size = options.size ?? 128;
  const splits = options.splits ?? { train: 0.8, val: 0.1, test: 0.1 };
  const concurrency = options.concurrency ?? 16;
  const changePairEvery = options.changePairEvery ?? 20;
  if (!Number.isInteger(count) || count < 1) throw new InvalidDatasetOptionsError(`count must be a positive integer, got ${count}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new InvalidDatasetOptionsError(`seed must be an integer in [0, 4294967295], got ${seed}`);
  }
  if (!Number.isInteger(size) || size < 32 || size > 4096) throw new InvalidDatasetOptionsError(`size must be an integer in [32, 4096], got ${size}`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidDatasetOptionsError(`concurrency must be a positive integer, got ${concurrency}`);
  if (!Number.isInteger(changePairEvery) || changePairEvery < 0) {
    throw new InvalidDatasetOptionsError(`changePairEvery must be a non-negative integer, got ${changePairEvery}`);
  }
  const fractions = SPLIT_NAMES.map((s) => splits[s]);
  if (fractions.some((f) => !Number.isFinite(f) || f < 0) || Math.abs(fractions.reduce((a, b) => a + b, 0) - 1) > 1e-9) {
    throw new InvalidDatasetOptionsError(`split fractions must be non-negative and add up to 1, got ${fractions.join('/')}`);
  }
  return { outDir: options.outDir, count, seed, size, splits, concurrency, changePairEvery };
}

/**
 * Split of every image: exact counts (rounded, the remainder to train), assigned by a seeded shuffle so that
 * every split mixes all classes.
 */
export function assignSplits(count: number, seed: number, splits: SplitFractions): SplitName[] {
  const nVal = Math.round(count * splits.val);
  const nTest = Math.min(count - nVal, Math.round(count * splits.test));
  const order = Array.from({ length: count }, (_, i) => i);
  const rng = new Random(seed ^ 0x7f4a7c15);
  for (let i = count - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const out = new Array<SplitName>(count).fill('train');
  order.forEach((index, rank) => {
    if (rank < nTest) out[index] = 'test';
    else if (rank < nTest + nVal) out[index] = 'val';
  });
  return out;
}

/** Scene class of image `index`: the classes in turn, so that every class gets count / 12 images (±1). */
export function sceneClassOf(index: number): SceneClass {
  return SCENE_CLASSES[index % SCENE_CLASSES.length];
}

const round2 = (v: number) => Math.round(v * 100) / 100;
const roundPoints = (points: readonly Point[]) => points.map(([x, y]) => [round2(x), round2(y)]);

/** Karpathy tokens: lower-case words without punctuation. */
function tokens(raw: string): string[] {
  return raw
    .toLowerCase()
    .split(/\s+/)
    .map((t) => t.replace(/[^a-z0-9'-]/g, ''))
    .filter((t) => t.length > 0);
}

interface KarpathyImage {
  filename: string;
  imgid: number;
  split: SplitName;
  scene_class: SceneClass;
  /** UCM's `<class>/<file>` field, which the eval library's Karpathy adapter reads as the category. */
  ucm_landuse_name: string;
  seed: number;
  sentids: number[];
  sentences: Array<{ raw: string; tokens: string[]; imgid: number; sentid: number }>;
}

interface RsvqaQuestion {
  id: number;
  img_id: number;
  type: string;
  question: string;
  answers_ids: number[];
  people_id: number;
  date_added: number;
  split: SplitName;
  active: boolean;
}
interface RsvqaAnswer {
  id: number;
  question_id: number;
  answer: string;
  people_id: number;
  date_added: number;
  active: boolean;
}
interface RsvqaImage {
  id: number;
  original_name: string;
  scene_class: SceneClass;
  questions_ids: number[];
  people_id: number;
  date_added: number;
  split: SplitName;
  active: boolean;
}

interface ChangePairRecord {
  id: number;
  image_id: number;
  split: SplitName;
  scene_class: SceneClass;
  before: string;
  after: string;
  kind: string;
  object_class: string | null;
  object_ids: number[];
  caption: string;
}

/** What one image contributes to the index files; built by a worker, gathered in index order. */
interface ImageResult {
  karpathy: KarpathyImage;
  vqa: Array<{ question: string; answer: string; type: VqaType }>;
  sceneGraphLine: string;
  changePair?: ChangePairRecord;
}

function writeLine(stream: WriteStream, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = stream.write(line, (error) => (error ? reject(error) : undefined));
    if (ok) resolve();
    else stream.once('drain', resolve);
  });
}

/**
 * Writes a synthetic dataset under `outDir`: `images/<id>.png`, Karpathy captions (`dataset_synth.json`),
 * RSVQA files (`synth_{questions,answers,images}.json`, all rows active, each image's split recorded, plus
 * `synth_split_<split>_*.json` per split), `scene_graphs.jsonl` and `change_pairs/`. Deterministic by seed.
 */
export async function writeSyntheticDataset(options: WriteSyntheticDatasetOptions): Promise<SyntheticDatasetSummary> {
  const o = validate(options);
  const { outDir, count, seed, size } = o;
  const imagesDir = join(outDir, SYNTH_FILES.images);
  const pairsDir = join(outDir, SYNTH_FILES.changePairs);
  await mkdir(imagesDir, { recursive: true });
  if (o.changePairEvery > 0) await mkdir(pairsDir, { recursive: true });
  const splitOf = assignSplits(count, seed, o.splits);

  const processImage = async (index: number): Promise<ImageResult> => {
    const sceneSeed = imageSeed(seed, index);
    const sceneClass = sceneClassOf(index);
    const split = splitOf[index];
    const scene = generateScene({ seed: sceneSeed, size, sceneClass });
    const description = describeScene(scene, sceneSeed);
    const filename = `${index}.png`;
    const pngWrite = encodePng(scene).then((png) => writeFile(join(imagesDir, filename), png));
    let changePair: ChangePairRecord | undefined;
    let pairWrite: Promise<unknown> = Promise.resolve();
    if (o.changePairEvery > 0 && index % o.changePairEvery === 0) {
      const pairId = index / o.changePairEvery;
      // The same seed and class as image `index`: its `before` or `after` is that image.
      const pair = generateChangePair({ seed: sceneSeed, size, sceneClass });
      const before = `${pairId}_before.png`;
      const after = `${pairId}_after.png`;
      pairWrite = Promise.all([
        encodePng(pair.before).then((png) => writeFile(join(pairsDir, before), png)),
        encodePng(pair.after).then((png) => writeFile(join(pairsDir, after), png)),
      ]);
      changePair = {
        id: pairId,
        image_id: index,
        split,
        scene_class: sceneClass,
        before,
        after,
        kind: pair.change.kind,
        object_class: pair.change.objectClass,
        object_ids: pair.change.objectIds,
        caption: pair.caption,
      };
    }
    const sentids = description.references.map((_, j) => index * description.references.length + j);
    const karpathy: KarpathyImage = {
      filename,
      imgid: index,
      split,
      scene_class: sceneClass,
      ucm_landuse_name: `${sceneClass}/${filename}`,
      seed: sceneSeed,
      sentids,
      sentences: description.references.map((raw, j) => ({ raw, tokens: tokens(raw), imgid: index, sentid: sentids[j] })),
    };
    const sceneGraphLine = `${JSON.stringify({
      id: index,
      filename,
      seed: sceneSeed,
      split,
      scene_class: sceneClass,
      width: scene.width,
      height: scene.height,
      metres_per_pixel: scene.metresPerPixel,
      objects: scene.objects.map((obj) => ({
        id: obj.id,
        class: obj.class,
        colour: obj.colour,
        box: obj.box,
        polygon: roundPoints(obj.polygon),
        ...(obj.line ? { line: roundPoints(obj.line) } : {}),
        attributes: obj.attributes,
      })),
      captions: { theme: description.theme, objects: description.objects, relations: description.relations },
      references: description.references,
      relations: description.relationFacts,
      vqa: description.vqa,
    })}\n`;
    await Promise.all([pngWrite, pairWrite]);
    return { karpathy, vqa: description.vqa, sceneGraphLine, changePair };
  };

  // Bounded pool: workers take the next index; results are gathered and flushed to the JSONL in index order.
  const results = new Array<ImageResult | undefined>(count);
  const graphs = createWriteStream(join(outDir, SYNTH_FILES.sceneGraphs));
  const graphsClosed = new Promise<void>((resolve, reject) => {
    graphs.once('close', resolve);
    graphs.once('error', reject);
  });
  let next = 0;
  let flushed = 0;
  let done = 0;
  let flushing: Promise<void> = Promise.resolve();
  const flush = async () => {
    while (flushed < count && results[flushed] !== undefined) {
      await writeLine(graphs, results[flushed]!.sceneGraphLine);
      results[flushed]!.sceneGraphLine = '';
      flushed++;
    }
  };
  const worker = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await processImage(index);
      done++;
      options.onProgress?.({ done, total: count });
      flushing = flushing.then(flush);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.concurrency, count) }, worker));
    await flushing;
  } finally {
    graphs.end();
  }
  await graphsClosed;

  // Index files, written at the end.
  const karpathyImages: KarpathyImage[] = [];
  const questions: RsvqaQuestion[] = [];
  const answers: RsvqaAnswer[] = [];
  const rsvqaImages: RsvqaImage[] = [];
  const changePairs: ChangePairRecord[] = [];
  const perSplit: Record<SplitName, number> = { train: 0, val: 0, test: 0 };
  const perClass = Object.fromEntries(SCENE_CLASSES.map((c) => [c, 0])) as Record<SceneClass, number>;
  for (let index = 0; index < count; index++) {
    const result = results[index]!;
    const k = result.karpathy;
    karpathyImages.push(k);
    perSplit[k.split]++;
    perClass[k.scene_class]++;
    const questionIds: number[] = [];
    for (const qa of result.vqa) {
      const id = questions.length;
      questionIds.push(id);
      questions.push({
        id,
        img_id: index,
        type: RSVQA_TYPE_NAMES[qa.type],
        question: qa.question,
        answers_ids: [id],
        people_id: 0,
        date_added: 0,
        split: k.split,
        active: true,
      });
      answers.push({ id, question_id: id, answer: qa.answer, people_id: 0, date_added: 0, active: true });
    }
    rsvqaImages.push({
      id: index,
      original_name: k.filename,
      scene_class: k.scene_class,
      questions_ids: questionIds,
      people_id: 0,
      date_added: 0,
      split: k.split,
      active: true,
    });
    if (result.changePair) changePairs.push(result.changePair);
  }

  const files: string[] = [SYNTH_FILES.sceneGraphs];
  const writeJson = async (name: string, value: unknown) => {
    await writeFile(join(outDir, name), JSON.stringify(value));
    files.push(name);
  };
  await writeJson(SYNTH_FILES.karpathy, { dataset: 'synth', seed, size, images: karpathyImages });
  await writeJson(SYNTH_FILES.questions, { questions });
  await writeJson(SYNTH_FILES.answers, { answers });
  await writeJson(SYNTH_FILES.imagesIndex, { images: rsvqaImages });
  // RSVQA ships one file set per split; the eval adapter reads a prefix, so each split gets its own.
  for (const split of SPLIT_NAMES) {
    const imageIds = new Set(rsvqaImages.filter((im) => im.split === split).map((im) => im.id));
    const splitQuestions = questions.filter((q) => imageIds.has(q.img_id));
    const questionIds = new Set(splitQuestions.map((q) => q.id));
    await writeJson(`synth_split_${split}_questions.json`, { questions: splitQuestions });
    await writeJson(`synth_split_${split}_answers.json`, { answers: answers.filter((a) => questionIds.has(a.question_id)) });
    await writeJson(`synth_split_${split}_images.json`, { images: rsvqaImages.filter((im) => imageIds.has(im.id)) });
  }
  if (o.changePairEvery > 0) await writeJson(SYNTH_FILES.changePairIndex, { change_pairs: changePairs });

  return { outDir, count, seed, size, perSplit, perClass, questions: questions.length, changePairs: changePairs.length, files };
}
