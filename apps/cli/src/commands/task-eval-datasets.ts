import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  loadClassFolders,
  loadDiorRsvg,
  loadLevirCc,
  loadLevirCd,
  loadRsunivlmEvalList,
  type DiorRsvgSplit,
  type RsunivlmSample,
} from '@rsmoe/eval';
import { boxPx, parseBoxesText, parseMaskText, type ImageSize } from '@rsmoe/region-outputs';
import sharp from 'sharp';
import { CliInputError } from './cli-input';
import { classKey, EVAL_TASKS, type Corners, type EvalItem, type EvalPlan, type EvalTask, type TextMask } from './task-eval-items';

/** `--dataset` formats whose samples go through the RSUniVLM task endpoints, and the tasks each one holds. */
export const TASK_DATASET_TASKS = {
  'dior-rsvg': ['grounding'],
  'class-folder': ['classification'],
  'levir-cc': ['change-caption'],
  'levir-cd': ['change-mask'],
  rsunivlm: EVAL_TASKS,
} as const satisfies Record<string, readonly EvalTask[]>;
export type TaskDatasetFormat = keyof typeof TASK_DATASET_TASKS;
export const TASK_DATASET_FORMATS = Object.keys(TASK_DATASET_TASKS) as TaskDatasetFormat[];

export function isTaskDatasetFormat(format: string): format is TaskDatasetFormat {
  return Object.hasOwn(TASK_DATASET_TASKS, format);
}

export interface TaskDatasetOptions {
  format: TaskDatasetFormat;
  /**
   * dior-rsvg: the folder holding `Annotations/` and the split files; class-folder: `<root>/<class>/<image>`;
   * levir-cc: the folder holding `LevirCCcaptions.json` (or that file); levir-cd: the folder holding the
   * split folders, or one split folder (`A/`, `B/`, `label/`); rsunivlm: the evaluation list (JSON).
   */
  root: string;
  /**
   * Where image paths are resolved. Default: dior-rsvg `<root>/JPEGImages`, levir-cc `images/` next to the
   * caption file, levir-cd the split folder, rsunivlm the list's folder, class-folder the root.
   */
  images?: string;
  /** A split, or `all`. Default: `test` where the dataset has one (dior-rsvg, levir-cc, levir-cd). */
  split?: string;
  /** Only this task's samples (rsunivlm); must be the format's task otherwise. */
  task?: EvalTask;
  /** Only the first n samples (after the split and task filters). */
  limit?: number;
}

const MASK_BACKGROUND = 'others';

async function kindOf(path: string): Promise<'file' | 'folder' | undefined> {
  try {
    const found = await stat(path);
    return found.isFile() ? 'file' : found.isDirectory() ? 'folder' : undefined;
  } catch {
    return undefined;
  }
}

function noSplits(format: TaskDatasetFormat, split: string | undefined): void {
  if (split !== undefined && split !== 'all') throw new CliInputError(`--split: ${format} has no splits (got "${split}")`);
}

/**
 * Reads a task dataset into the items `rsmoe eval` sends, in dataset order.
 * @throws CliInputError for a split or task the format does not have; DatasetFormatError from the adapters.
 */
export async function readTaskDataset(options: TaskDatasetOptions): Promise<EvalPlan> {
  const { format, task } = options;
  const tasks: readonly EvalTask[] = TASK_DATASET_TASKS[format];
  if (task !== undefined && !tasks.includes(task)) throw new CliInputError(`--task ${task} does not fit --dataset ${format} (it holds ${tasks.join(', ')})`);
  const plan = await READERS[format](options);
  if (task !== undefined) plan.items = plan.items.filter((item) => item.task === task);
  if (options.limit !== undefined) plan.items = plan.items.slice(0, options.limit);
  return plan;
}

async function imageSize(file: string): Promise<ImageSize | undefined> {
  try {
    const { width, height } = await sharp(file).metadata();
    return width && height ? { width, height } : undefined;
  } catch {
    return undefined;
  }
}

const READERS: Record<TaskDatasetFormat, (options: TaskDatasetOptions) => Promise<EvalPlan>> = {
  async 'dior-rsvg'({ root, images, split: asked }) {
    const split = asked === 'all' ? undefined : (asked ?? ((await kindOf(join(root, 'test.txt'))) === 'file' ? 'test' : undefined));
    if (split !== undefined && !['train', 'val', 'test'].includes(split)) throw new CliInputError(`--split: dior-rsvg has train, val and test (or "all"), got "${split}"`);
    const samples = await loadDiorRsvg(root, split as DiorRsvgSplit | undefined);
    const imagesDir = images ?? join(root, 'JPEGImages');
    return {
      label: `dior-rsvg:${root}${split ? ` (${split})` : ''}`,
      items: samples.map((s) => ({ task: 'grounding', id: s.id, image: resolve(imagesDir, s.image), query: s.expression, reference: [s.box] })),
      skipped: {},
    };
  },

  async 'class-folder'({ root, images, split }) {
    noSplits('class-folder', split);
    const { samples } = await loadClassFolders(root);
    return {
      label: `class-folder:${root}`,
      items: samples.map((s) => ({ task: 'classification', id: s.id, image: resolve(images ?? root, s.image), label: s.label })),
      skipped: {},
    };
  },

  async 'levir-cc'({ root, images, split: asked }) {
    const file = (await kindOf(root)) === 'file' ? root : join(root, 'LevirCCcaptions.json');
    let samples = await loadLevirCc(file);
    const split = asked === 'all' ? undefined : (asked ?? (samples.some((s) => s.split === 'test') ? 'test' : undefined));
    if (split !== undefined) samples = samples.filter((s) => s.split === split);
    const imagesDir = images ?? join(dirname(file), 'images');
    return {
      label: `levir-cc:${file}${split ? ` (${split})` : ''}`,
      items: samples.map((s) => ({ task: 'change-caption', id: s.id, before: resolve(imagesDir, s.before), after: resolve(imagesDir, s.after), references: s.references })),
      skipped: {},
    };
  },

  async 'levir-cd'({ root, images, split }) {
    if (split === 'all') throw new CliInputError('--split: levir-cd is read one split folder at a time (train, val or test)');
    const splitDir = split !== undefined ? join(root, split) : (await kindOf(join(root, 'A'))) === 'folder' ? root : join(root, 'test');
    const samples = await loadLevirCd(splitDir);
    const imagesDir = images ?? splitDir;
    return {
      label: `levir-cd:${splitDir}`,
      items: samples.map((s) => ({
        task: 'change-mask',
        id: s.id,
        before: resolve(imagesDir, s.before),
        after: resolve(imagesDir, s.after),
        reference: { kind: 'png', file: resolve(splitDir, s.label) },
      })),
      skipped: {},
    };
  },

  async rsunivlm({ root, images, split, task, limit }) {
    noSplits('rsunivlm', split);
    const samples = await loadRsunivlmEvalList(root);
    const imagesDir = images ?? dirname(root);
    const items: EvalItem[] = [];
    const skipped: Record<string, number> = {};
    // The task filter and the limit are applied here, so that only the images of chosen samples are measured.
    for (const sample of samples) {
      if (limit !== undefined && items.length >= limit) break;
      const item = await rsunivlmItem(sample, imagesDir, task);
      if (item === undefined) continue;
      if (typeof item === 'string') skipped[item] = (skipped[item] ?? 0) + 1;
      else items.push(item);
    }
    return { label: `rsunivlm:${root}`, items, skipped };
  },
};

/** The prompt after its task tag. */
function promptText(sample: RsunivlmSample): string {
  return sample.prompt.replace(/^\[[A-Za-z]+\]/, '').trim();
}

/** Which task a sample of each tag is (SEG: change-mask with two images, else segmentation). */
function taskOfTag(sample: RsunivlmSample): EvalTask | undefined {
  const tasks: Record<RsunivlmSample['task'], EvalTask | undefined> = {
    CAP: undefined,
    VQA: undefined,
    CLS: 'classification',
    CCD: 'change-caption',
    VG: 'grounding',
    REF: 'referring',
    SEG: sample.images.length === 2 ? 'change-mask' : 'segmentation',
  };
  return tasks[sample.task];
}

/**
 * One RSUniVLM sample as an item, or why it is skipped (the reasons are report keys), or undefined when it
 * is not of `only`. Tags: VG → grounding (the query is `metadata.query` or `phrase`, else the prompt after
 * its tag; the reference's percent boxes become pixels of the image), CLS → classification, CCD →
 * change-caption, REF → referring (the prompt's box), SEG → change-mask with two images, segmentation with
 * one when its metadata names `classes` or a `query`/`phrase`. CAP and VQA are not run from this list.
 */
export async function rsunivlmItem(sample: RsunivlmSample, imagesDir: string, only?: EvalTask): Promise<EvalItem | string | undefined> {
  const { id, task: tag } = sample;
  const task = taskOfTag(sample);
  if (only !== undefined && task !== only) return undefined;
  if (task === undefined) return `${tag}: not run from an RSUniVLM list (use a caption or VQA dataset)`;
  const files = sample.images.map((file) => resolve(imagesDir, file));
  const expected = task === 'change-caption' || task === 'change-mask' ? 2 : 1;
  if (files.length !== expected) return `${tag}: expected ${expected === 1 ? 'one image' : 'two images'}`;
  const unreadable = `${tag}: image unreadable`;
  switch (task) {
    case 'classification':
      return { task, id, image: files[0], label: sample.answer.trim() };
    case 'change-caption':
      return { task, id, before: files[0], after: files[1], references: [sample.answer] };
    case 'grounding': {
      const parsed = parseBoxesText(sample.answer);
      if (parsed.kind !== 'boxes') return `${tag}: no [x1, y1, x2, y2] box in the reference answer`;
      const size = await imageSize(files[0]);
      if (size === undefined) return unreadable;
      const reference = parsed.boxes.map((box): Corners => {
        const { x1, y1, x2, y2 } = boxPx(box, size);
        return [x1, y1, x2, y2];
      });
      return { task, id, image: files[0], query: metadataText(sample.metadata) ?? promptText(sample), reference };
    }
    case 'referring': {
      const parsed = parseBoxesText(promptText(sample));
      if (parsed.kind !== 'boxes') return `${tag}: no [x1, y1, x2, y2] box in the prompt`;
      const { x1, y1, x2, y2 } = parsed.boxes[0];
      return { task, id, image: files[0], box: [x1 / 100, y1 / 100, x2 / 100, y2 / 100], references: [sample.answer] };
    }
    case 'change-mask':
    case 'segmentation': {
      const grid = readMaskText(sample.answer);
      if (grid === undefined) return `${tag}: the reference mask text cannot be read`;
      if (task === 'change-mask') {
        const size = await imageSize(files[0]);
        return size === undefined ? unreadable : { task, id, before: files[0], after: files[1], reference: { kind: 'text', mask: { ...grid, size } } };
      }
      const request = segmentationRequest(sample.metadata);
      if (request === undefined) return `${tag}: one image but no classes or query in the metadata`;
      if ('classes' in request) {
        const asked = new Set([MASK_BACKGROUND, ...request.classes.map(classKey)]);
        if (!grid.labels.every((label) => asked.has(label))) return `${tag}: the reference holds a class the sample does not ask for`;
      }
      const size = await imageSize(files[0]);
      return size === undefined ? unreadable : { task, id, image: files[0], request, reference: { ...grid, size } };
    }
  }
}

/** `metadata.classes` (a list, or names separated by commas), else `metadata.query` or `metadata.phrase`. */
function segmentationRequest(metadata: Record<string, unknown>): { classes: string[] } | { query: string } | undefined {
  const raw = metadata.classes;
  const listed = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : [];
  const classes = listed.filter((name): name is string => typeof name === 'string' && name.trim() !== '' && classKey(name) !== MASK_BACKGROUND).map((name) => name.trim());
  if (classes.length > 0) return { classes };
  const query = metadataText(metadata);
  return query === undefined ? undefined : { query };
}

/** `metadata.query`, else `metadata.phrase`: a phrase the sample names apart from its prompt. */
function metadataText(metadata: Record<string, unknown>): string | undefined {
  for (const field of ['query', 'phrase']) {
    const value = metadata[field];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return undefined;
}

/**
 * Reads RSUniVLM's mask text with the labels it names (`others` first, then in order of appearance), so that
 * a reference is read whatever class list its sample had. Undefined when the text is not a mask.
 */
export function readMaskText(text: string): Omit<TextMask, 'size'> | undefined {
  const labels = [MASK_BACKGROUND];
  for (const line of text.split(/\r?\n/)) {
    for (const cell of line.split(',')) {
      const star = cell.lastIndexOf('*');
      const label = classKey(star < 0 ? '' : cell.slice(0, star));
      if (label !== '' && !labels.includes(label)) labels.push(label);
    }
  }
  try {
    const parsed = parseMaskText(text, labels);
    return parsed.kind === 'grid' ? { grid: parsed.grid, labels } : undefined;
  } catch {
    // A label the class list refuses (more than 255 names, a character mask text cannot hold).
    return undefined;
  }
}
