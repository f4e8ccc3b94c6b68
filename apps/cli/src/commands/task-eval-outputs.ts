import { mkdir, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  computeClassification,
  computeGrounding,
  evaluateCaptions,
  parseClassList,
  scoreChangeMaskFolders,
  scoreSegmentationFolders,
  type BoxSet,
  type CandidateSet,
  type LabelSet,
  type ReferenceSet,
} from '@rsmoe/eval';
import { encodeLabelMaskPng, IGNORE_LABEL, resizeNearest, type ImageSize, type LabelMask } from '@rsmoe/region-outputs';
import sharp from 'sharp';
import { CliInputError, readJsonFile } from './cli-input';
import type { ScoreTask } from './score.command';
import {
  classKey,
  type ChangeMaskItem,
  type EvalItem,
  type EvalTask,
  type MaskAnswerFile,
  type SegmentationItem,
  type TaskEvalRecord,
  type TextMask,
} from './task-eval-items';

/** The `rsmoe score --task` that scores each task's files. */
export const SCORE_TASK: Record<EvalTask, ScoreTask> = {
  grounding: 'grounding',
  classification: 'classification',
  'change-caption': 'caption',
  referring: 'caption',
  'change-mask': 'change-mask',
  segmentation: 'segmentation',
};

/** What `rsmoe score` reads for one task: JSON files, or folders of PNG masks (and the class list). */
export interface TaskFiles {
  refs: string;
  preds: string;
  /** Segmentation: the class names, index = pixel value. */
  classes?: string;
}

const MASK_TASKS: readonly EvalTask[] = ['change-mask', 'segmentation'];
const BACKGROUND = 'others';
const CHANGED = 255;

export function isMaskTask(task: EvalTask): boolean {
  return MASK_TASKS.includes(task);
}

/** A mask task's PNG name for a sample id: the id with characters other than letters, digits, `.`, `_`, `-` as `_`. */
export function maskFileName(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._-]/g, '_');
  return /\.png$/i.test(safe) ? safe : `${safe}.png`;
}

/** @throws CliInputError when two samples of a mask task would share a PNG name. */
export function assertDistinctMaskNames(items: readonly EvalItem[]): void {
  const seen = new Map<string, string>();
  for (const item of items) {
    if (!isMaskTask(item.task)) continue;
    const name = `${item.task}/${maskFileName(item.id)}`;
    const other = seen.get(name);
    if (other !== undefined) throw new CliInputError(`samples ${JSON.stringify(other)} and ${JSON.stringify(item.id)} would both write ${name}`);
    seen.set(name, item.id);
  }
}

/**
 * Writes a task's references and predictions where `rsmoe score --task SCORE_TASK[task]` reads them, inside
 * `dir`, for exactly `items`. A sample without a prediction (failed, or answered without it) is written as
 * "nothing found": no boxes, no label, an empty caption, a mask with no change (change-mask) or of ignore
 * pixels (segmentation, 255).
 */
export async function writeTaskFiles(task: EvalTask, items: readonly EvalItem[], records: ReadonlyMap<string, TaskEvalRecord>, dir: string): Promise<TaskFiles> {
  await mkdir(dir, { recursive: true });
  const prediction = (id: string) => {
    const record = records.get(id);
    return record?.status === 'ok' ? record.prediction : undefined;
  };
  if (task === 'change-mask' || task === 'segmentation') return writeMaskFiles(task, items, prediction, dir);

  const refs: Record<string, unknown> = {};
  const preds: Record<string, unknown> = {};
  for (const item of items) {
    const predicted = prediction(item.id);
    switch (item.task) {
      case 'grounding':
        refs[item.id] = item.reference;
        preds[item.id] = Array.isArray(predicted) ? predicted : [];
        break;
      case 'classification':
        refs[item.id] = item.label;
        if (typeof predicted === 'string' && predicted.trim() !== '') preds[item.id] = predicted;
        break;
      case 'change-caption':
      case 'referring':
        refs[item.id] = item.references;
        preds[item.id] = typeof predicted === 'string' ? predicted : '';
        break;
      default:
        throw new Error(`${item.task} sample in the ${task} files`);
    }
  }
  const files = { refs: join(dir, 'references.json'), preds: join(dir, 'predictions.json') };
  await writeFile(files.refs, `${JSON.stringify(refs, null, 1)}\n`);
  await writeFile(files.preds, `${JSON.stringify(preds, null, 1)}\n`);
  return files;
}

/**
 * Scores a task's files with the functions `rsmoe score --task SCORE_TASK[task]` calls on the same files, and
 * returns the object it prints.
 */
export async function scoreTaskFiles(task: EvalTask, files: TaskFiles): Promise<object> {
  const refs = () => readJsonFile(files.refs, 'references');
  const preds = () => readJsonFile(files.preds, 'predictions');
  switch (SCORE_TASK[task]) {
    case 'grounding':
      return computeGrounding((await refs()) as BoxSet, (await preds()) as BoxSet);
    case 'classification':
      return computeClassification((await refs()) as LabelSet, (await preds()) as LabelSet);
    case 'caption':
      return evaluateCaptions((await refs()) as ReferenceSet, (await preds()) as CandidateSet, { tokenized: false, perImage: false }).scores;
    case 'change-mask':
      return scoreChangeMaskFolders(files.refs, files.preds);
    case 'segmentation':
      return scoreSegmentationFolders(files.refs, files.preds, parseClassList(await readJsonFile(files.classes as string, 'classes')));
  }
}

/** The `rsmoe score` arguments that print a task's metrics again. */
export function scoreCommand(task: EvalTask, files: TaskFiles): string {
  return `rsmoe score --task ${SCORE_TASK[task]} --refs ${files.refs} --preds ${files.preds}${files.classes ? ` --classes ${files.classes}` : ''}`;
}

async function readMaskPng(file: string): Promise<LabelMask> {
  try {
    const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    throw new CliInputError(`cannot decode the mask ${file}: ${(error as Error).message}`);
  }
}

/** A mask with each value replaced by `table[value]`. */
function remap(mask: LabelMask, table: Uint8Array): LabelMask {
  const data = new Uint8Array(mask.data.length);
  for (let i = 0; i < data.length; i++) data[i] = table[mask.data[i]];
  return { width: mask.width, height: mask.height, data };
}

/** A 256-entry value table from pixel values' class names; values without a name map to `unnamed`. */
function tableOf(names: readonly string[], indexOf: (name: string) => number, unnamed: number): Uint8Array {
  const table = new Uint8Array(256).fill(unnamed);
  names.forEach((name, value) => {
    if (name !== '') table[value] = indexOf(name);
  });
  return table;
}

function filled(size: ImageSize, value: number): LabelMask {
  return { width: size.width, height: size.height, data: new Uint8Array(size.width * size.height).fill(value) };
}

/**
 * Segmentation: one class list over the samples (`others`, then each sample's classes or phrase in order of
 * first appearance, matched by classKey), and per sample how its class names map into it: a phrase sample
 * reads every label other than `others` as its phrase.
 */
export function segmentationClasses(items: readonly SegmentationItem[]): { classes: string[]; indexOf: (item: SegmentationItem, name: string) => number } {
  const classes = [BACKGROUND];
  const index = new Map([[BACKGROUND, 0]]);
  for (const item of items) {
    for (const name of 'classes' in item.request ? item.request.classes : [item.request.query]) {
      const key = classKey(name);
      if (!index.has(key)) {
        index.set(key, classes.length);
        classes.push(name);
      }
    }
  }
  if (classes.length > IGNORE_LABEL) throw new CliInputError(`the segmentation samples name ${classes.length} classes; masks hold at most ${IGNORE_LABEL}`);
  const indexOf = (item: SegmentationItem, name: string) => {
    const key = classKey(name);
    if (key === BACKGROUND) return 0;
    if ('query' in item.request) return index.get(classKey(item.request.query)) as number;
    return index.get(key) ?? IGNORE_LABEL;
  };
  return { classes, indexOf };
}

async function writeMaskFiles(
  task: 'change-mask' | 'segmentation',
  items: readonly EvalItem[],
  prediction: (id: string) => TaskEvalRecord['prediction'],
  dir: string,
): Promise<TaskFiles> {
  const files: TaskFiles = { refs: join(dir, 'references'), preds: join(dir, 'predictions') };
  await Promise.all([mkdir(files.refs, { recursive: true }), mkdir(files.preds, { recursive: true })]);
  const segmentation = task === 'segmentation' ? segmentationClasses(items as SegmentationItem[]) : undefined;
  if (segmentation) {
    files.classes = join(dir, 'classes.json');
    await writeFile(files.classes, `${JSON.stringify(segmentation.classes)}\n`);
  }
  const names = new Set<string>();
  // One sample at a time: LEVIR-CD's masks are 1024 × 1024 each.
  for (const item of items) {
    const name = maskFileName(item.id);
    names.add(name);
    const answer = prediction(item.id);
    const answerFile = answer !== null && typeof answer === 'object' && !Array.isArray(answer) ? (answer as MaskAnswerFile) : undefined;
    let reference: LabelMask;
    let predicted: LabelMask | undefined;
    if (item.task === 'change-mask') {
      const changed = (n: string) => (classKey(n) === BACKGROUND ? 0 : CHANGED);
      reference = await changeReference(item);
      if (answerFile) predicted = remap(await readMaskPng(join(dir, answerFile.file)), tableOf(answerFile.classes, changed, 0));
      predicted ??= filled(reference, 0);
    } else if (item.task === 'segmentation' && segmentation) {
      const indexOf = (n: string) => segmentation.indexOf(item, n);
      reference = remap(textReference(item.reference), tableOf(item.reference.labels, indexOf, IGNORE_LABEL));
      if (answerFile) predicted = remap(await readMaskPng(join(dir, answerFile.file)), tableOf(answerFile.classes, indexOf, IGNORE_LABEL));
      predicted ??= filled(reference, IGNORE_LABEL);
    } else {
      throw new Error(`${item.task} sample in the ${task} files`);
    }
    await writeFile(join(files.refs, name), await encodeLabelMaskPng(reference));
    await writeFile(join(files.preds, name), await encodeLabelMaskPng(predicted));
  }
  await removeOtherPngs(files.refs, names);
  await removeOtherPngs(files.preds, names);
  return files;
}

/** The reference as a binary mask (255 = changed). */
async function changeReference(item: ChangeMaskItem): Promise<LabelMask> {
  const labels = item.reference.kind === 'png' ? await readMaskPng(item.reference.file) : textReference(item.reference.mask);
  const table = new Uint8Array(256).fill(CHANGED);
  table[0] = 0;
  return remap(labels, table);
}

/** Mask text's grid at the size of its image. */
function textReference(mask: TextMask): LabelMask {
  return resizeNearest(mask.grid, mask.size);
}

/** Masks of an earlier run with another selection would make `rsmoe score` refuse the folders. */
async function removeOtherPngs(dir: string, keep: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(dir)) {
    if (/\.png$/i.test(name) && !keep.has(name)) await unlink(join(dir, name));
  }
}

/** Writes a mask answer's PNG under the task folder and returns what the results file keeps of it. */
export async function keepMaskAnswer(dir: string, id: string, mask: { png: string; classes: { index: number; name: string }[] }): Promise<MaskAnswerFile> {
  const file = join('answers', maskFileName(id));
  await mkdir(join(dir, 'answers'), { recursive: true });
  await writeFile(join(dir, file), Buffer.from(mask.png, 'base64'));
  const classes: string[] = [];
  for (const { index, name } of mask.classes) classes[index] = name;
  return { file, classes: Array.from(classes, (name) => name ?? '') };
}

/** Whether a kept mask answer is still on disk (a resumed run asks again for one that is not). */
export async function maskAnswerExists(dir: string, answer: MaskAnswerFile): Promise<boolean> {
  return stat(join(dir, answer.file)).then(
    (found) => found.isFile(),
    () => false,
  );
}
