// RSUniVLM's tasks on the demo pack, through a running gateway, on held-out synthetic scenes: classification
// accuracy, grounding Acc@0.5 / mean IoU, referring accuracy, segmentation mIoU, change-mask F1 and change
// captions scored with the caption metrics. The truth comes from libs/synth's own scene graphs (boxes, and
// polygons rasterised at pixel centres); the scores from libs/eval, as `rsmoe score` computes them.
// test/e2e/demo-tasks.e2e.spec.ts asserts floors on a smaller set; the numbers of docs/evaluation.md come from:
//
//   npx tsx tools/eval/demo-tasks.ts [--pack models/demo] [--count 300] [--out docs/evaluation-tasks.json]
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import {
  ChangeMaskCounter,
  computeClassification,
  computeGrounding,
  evaluateCaptions,
  SegmentationCounter,
  type ChangeMaskResult,
  type SegmentationResult,
} from '@rsmoe/eval';
import {
  changedPixelMap,
  encodePng,
  generateChangePair,
  generateScene,
  imageSeed,
  NOUNS,
  OBJECT_CLASSES,
  objectClassMap,
  Random,
  sceneClassOf,
  type ObjectClass,
  type Scene,
  type SceneObject,
} from '@rsmoe/synth';
import { MeshLauncher } from '../../apps/cli/src/mesh/mesh-launcher';
import { freePort } from '../../apps/cli/src/mesh/redis-locator';

/** The held-out set: `rsmoe synth --seed 9999`'s scenes; tools/train checks that no training image shares a seed. */
export const HELD_OUT_SEED = 9999;
/** The segmentation classes of the demo pack: `others` (background) then libs/synth's object classes. */
const SEGMENTATION_CLASSES = ['others', ...OBJECT_CLASSES];

export interface DemoTaskCounts {
  classification: number;
  grounding: number;
  referring: number;
  segmentation: number;
  change: number;
}

export interface DemoTaskReport {
  seed: number;
  classification: { accuracy: number; count: number; perClass: Record<string, number> };
  grounding: { accAt05: number; meanIoU: number; count: number; noBox: number };
  referring: { exact: number; objectClass: number; count: number };
  segmentation: SegmentationResult & { count: number };
  changeMask: ChangeMaskResult & { count: number };
  changeCaption: { Bleu_4: number; METEOR: number; ROUGE_L: number; CIDEr: number; exact: number; count: number };
  /** Requests answered with something other than 200, by task and status (none expected). */
  failures: Record<string, number>;
  /** A few wrong answers per task, to read. */
  examples: Record<string, string[]>;
}

interface Answer {
  label?: string;
  caption?: string;
  text?: string;
  boxes?: { boxPx: [number, number, number, number] }[];
  mask?: { width: number; height: number; png: string; classes: { index: number; name: string }[] };
  error?: { code: string; message: string };
}

/** The held-out scene `index`, as `rsmoe synth --seed 9999` makes it. */
export function heldOutScene(index: number, seed = HELD_OUT_SEED): Scene {
  return generateScene({ seed: imageSeed(seed, index), sceneClass: sceneClassOf(index) });
}

const nounOf = (objectClass: ObjectClass): string => NOUNS[objectClass][0];

/** A grounding query for a random object (classes drawn uniformly first), and every object it names, as tools/train asks. */
export function groundingQuery(scene: Scene, rng: Random): { query: string; matches: SceneObject[] } | undefined {
  const classes = [...new Set(scene.objects.map((o) => o.class))].sort();
  if (classes.length === 0) return undefined;
  const objectClass = classes[rng.int(0, classes.length - 1)];
  const candidates = scene.objects.filter((o) => o.class === objectClass);
  const object = candidates[rng.int(0, candidates.length - 1)];
  const noun = rng.chance(0.5) ? objectClass : nounOf(objectClass);
  if (rng.chance(0.5)) {
    return { query: `${object.colour} ${noun}`, matches: scene.objects.filter((o) => o.class === objectClass && o.colour === object.colour) };
  }
  return { query: noun, matches: candidates };
}

/** 1 to 3 classes present in the scene's class map, drawn with `rng`. */
function segmentationQuery(classMap: Uint8Array, rng: Random): ObjectClass[] {
  const present = [...new Set(classMap)].filter((v) => v > 0).map((v) => OBJECT_CLASSES[v - 1]);
  for (let i = present.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [present[i], present[j]] = [present[j], present[i]];
  }
  return present.slice(0, [1, 1, 2, 2, 3][rng.int(0, 4)]);
}

async function pngBase64(scene: Scene): Promise<string> {
  return Buffer.from(await encodePng(scene)).toString('base64');
}

async function decodeMask(mask: NonNullable<Answer['mask']>): Promise<Uint8Array> {
  const image = sharp(Buffer.from(mask.png, 'base64'));
  const { channels } = await image.metadata();
  if (channels !== 1) throw new Error(`the mask PNG has ${channels} channels, not 1`);
  // sharp's raw output is sRGB unless asked otherwise: take the one band as it is.
  const { data } = await image.extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

async function inBatches<T, R>(items: readonly T[], size: number, run: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map((item, k) => run(item, i + k)))));
  return out;
}

/** Sends every task of the held-out set through the gateway at `url` and scores the answers. */
export async function evaluateDemoTasks(url: string, counts: DemoTaskCounts, options: { seed?: number; concurrency?: number } = {}): Promise<DemoTaskReport> {
  const seed = options.seed ?? HELD_OUT_SEED;
  const concurrency = options.concurrency ?? 8;
  const failures: Record<string, number> = {};
  const examples: Record<string, string[]> = {};
  const note = (task: string, line: string) => {
    const list = (examples[task] ??= []);
    if (list.length < 5) list.push(line);
  };
  const post = async (task: string, path: string, body: object): Promise<Answer | undefined> => {
    const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = (await response.json()) as Answer;
    if (response.status === 200) return answer;
    const key = `${task} ${response.status} ${answer.error?.code ?? ''}`.trim();
    failures[key] = (failures[key] ?? 0) + 1;
    note(task, `${response.status}: ${answer.error?.message ?? ''}`);
    return undefined;
  };
  const most = Math.max(counts.classification, counts.grounding, counts.referring, counts.segmentation);
  const scenes = Array.from({ length: most }, (_, i) => heldOutScene(i, seed));
  const images = await Promise.all(scenes.map(pngBase64));

  // Classification: the pack scores each label as the whole answer.
  const classRefs: Record<string, string> = {};
  const classPreds: Record<string, string> = {};
  await inBatches(scenes.slice(0, counts.classification), concurrency, async (scene, i) => {
    classRefs[i] = scene.sceneClass;
    const answer = await post('classification', '/v1/classify', { image: images[i] });
    classPreds[i] = answer?.label ?? '';
    if (answer && answer.label !== scene.sceneClass) note('classification', `${scene.sceneClass} → ${answer.label}`);
  });
  const classification = computeClassification(classRefs, classPreds);

  // Grounding: the first box against every object the query names (Acc@0.5 and mean IoU, as `rsmoe score`).
  const groundingRng = new Random(seed ^ 0x6772);
  const groundingRefs: Record<string, number[][]> = {};
  const groundingPreds: Record<string, number[][]> = {};
  let noBox = 0;
  const queries = scenes.slice(0, counts.grounding).map((scene) => groundingQuery(scene, groundingRng));
  await inBatches(queries, concurrency, async (query, i) => {
    if (!query) return;
    groundingRefs[i] = query.matches.map((o) => [...o.box]);
    const answer = await post('grounding', '/v1/grounding', { image: images[i], query: query.query });
    groundingPreds[i] = (answer?.boxes ?? []).map((b) => [...b.boxPx]);
    if (groundingPreds[i].length === 0) noBox++;
  });
  const grounding = computeGrounding(groundingRefs, groundingPreds);

  // Referring: one object's box → "<colour> <noun>".
  const referringRng = new Random(seed ^ 0x7265);
  let referringExact = 0;
  let referringClass = 0;
  let referringCount = 0;
  await inBatches(scenes.slice(0, counts.referring), concurrency, async (scene, i) => {
    if (scene.objects.length === 0) return;
    const object = scene.objects[referringRng.int(0, scene.objects.length - 1)];
    referringCount++;
    const answer = await post('referring', '/v1/referring', { image: images[i], box: object.box, units: 'px' });
    const text = (answer?.text ?? answer?.caption ?? '').trim();
    const expected = `${object.colour} ${nounOf(object.class)}`;
    if (text === expected) referringExact++;
    if (text.endsWith(nounOf(object.class))) referringClass++;
    else if (answer) note('referring', `${expected} → ${text}`);
  });

  // Segmentation: 1-3 classes present in the scene; the answer's labels mapped back onto the pack's classes.
  const segmentationRng = new Random(seed ^ 0x7365);
  const segmentation = new SegmentationCounter(SEGMENTATION_CLASSES);
  let segmentationCount = 0;
  await inBatches(scenes.slice(0, counts.segmentation), concurrency, async (scene, i) => {
    const classMap = objectClassMap(scene);
    const query = segmentationQuery(classMap, segmentationRng);
    if (query.length === 0) return;
    segmentationCount++;
    const wanted = new Set(query.map((c) => OBJECT_CLASSES.indexOf(c) + 1));
    const reference = classMap.map((v) => (wanted.has(v) ? v : 0));
    const answer = await post('segmentation', '/v1/segmentation', { image: images[i], classes: query });
    let prediction = new Uint8Array(reference.length);
    if (answer?.mask) {
      const labels = await decodeMask(answer.mask);
      const toPack = answer.mask.classes.map((c) => Math.max(0, SEGMENTATION_CLASSES.indexOf(c.name)));
      prediction = labels.map((v) => (v === 255 ? 0 : toPack[v]));
    }
    segmentation.add({ name: String(i), reference, prediction });
  });

  // Changes: caption and mask of held-out pairs, in one request each.
  const changeMask = new ChangeMaskCounter();
  const captionRefs: Record<string, string[]> = {};
  const captionPreds: Record<string, string> = {};
  await inBatches(
    Array.from({ length: counts.change }, (_, i) => i),
    concurrency,
    async (i) => {
      const pair = generateChangePair({ seed: imageSeed(seed, i), sceneClass: sceneClassOf(i) });
      const [before, after] = await Promise.all([pngBase64(pair.before), pngBase64(pair.after)]);
      const answer = await post('change', '/v1/changes', { before, after, output: 'both' });
      captionRefs[i] = [pair.caption];
      captionPreds[i] = answer?.caption ?? '';
      if (answer && answer.caption !== pair.caption) note('change caption', `${pair.caption} → ${answer.caption}`);
      const reference = changedPixelMap(pair);
      let prediction = new Uint8Array(reference.length);
      if (answer?.mask) {
        const labels = await decodeMask(answer.mask);
        const changed = answer.mask.classes.find((c) => c.name === 'changed')?.index ?? -1;
        prediction = labels.map((v) => (v === changed ? 1 : 0));
      }
      changeMask.add({ name: String(i), reference, prediction });
    },
  );
  const captions = evaluateCaptions(captionRefs, captionPreds);
  const exact = Object.keys(captionRefs).filter((id) => captionPreds[id] === captionRefs[id][0]).length;

  return {
    seed,
    classification: { accuracy: classification.accuracy, count: classification.count, perClass: classification.perClass },
    grounding: { accAt05: grounding['acc@0.5'], meanIoU: grounding.meanIoU, count: grounding.count, noBox },
    referring: { exact: referringExact / Math.max(1, referringCount), objectClass: referringClass / Math.max(1, referringCount), count: referringCount },
    segmentation: { ...segmentation.result(), count: segmentationCount },
    changeMask: { ...changeMask.result(), count: counts.change },
    changeCaption: {
      Bleu_4: captions.scores.Bleu_4,
      METEOR: captions.scores.METEOR,
      ROUGE_L: captions.scores.ROUGE_L,
      CIDEr: captions.scores.CIDEr,
      exact: exact / Math.max(1, counts.change),
      count: counts.change,
    },
    failures,
    examples,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pack: { type: 'string', default: resolve(__dirname, '../../models/demo') },
      count: { type: 'string', default: '300' },
      concurrency: { type: 'string', default: '8' },
      out: { type: 'string' },
    },
  });
  const count = Number(values.count);
  const mesh = new MeshLauncher({
    packDir: resolve(values.pack!),
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    keyPrefix: 'eval-demo-tasks',
    queuePrefix: 'eval-demo-tasks',
    gatewayPort: await freePort(),
    routerPort: await freePort(),
    env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1' },
    onLog: (service, line) => {
      if (/"level":"(error|warn)"/.test(line)) process.stderr.write(`[${service}] ${line}\n`);
    },
    readyTimeoutMs: 120_000,
  });
  await mesh.start().catch(async (error: unknown) => {
    await mesh.stop();
    throw error;
  });
  try {
    const started = Date.now();
    const report = await evaluateDemoTasks(mesh.gatewayUrl, { classification: count, grounding: count, referring: count, segmentation: count, change: count }, { concurrency: Number(values.concurrency) });
    const json = JSON.stringify({ pack: values.pack, count, seconds: Math.round((Date.now() - started) / 1000), ...report }, null, 2);
    process.stdout.write(`${json}\n`);
    if (values.out) writeFileSync(values.out, `${json}\n`);
  } finally {
    await mesh.stop();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
