import { Option, type Command } from 'commander';
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
import { CliInputError, readJsonFile, withInputErrors } from './cli-input';

/** Tasks `rsmoe score --task` knows; `caption` is the default. */
export const SCORE_TASKS = ['caption', 'grounding', 'segmentation', 'change-mask', 'classification'] as const;
export type ScoreTask = (typeof SCORE_TASKS)[number];

interface ScoreFlags {
  task: ScoreTask;
  refs: string;
  preds: string;
  classes?: string;
  tokenized?: boolean;
  perImage?: boolean;
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliInputError(`${what} must be a JSON object keyed by image id`);
  }
  return value as Record<string, unknown>;
}

/** Flags that only one task reads: giving them to another is a mistake worth reporting. */
function checkTaskFlags(flags: ScoreFlags): void {
  const misplaced: string[] = [];
  if (flags.task !== 'caption' && flags.tokenized) misplaced.push('--tokenized');
  if (flags.task !== 'caption' && flags.perImage) misplaced.push('--per-image');
  if (misplaced.length > 0) throw new CliInputError(`${misplaced.join(' and ')} only ${misplaced.length > 1 ? 'apply' : 'applies'} to --task caption`);
  if (flags.task !== 'segmentation' && flags.classes !== undefined) throw new CliInputError('--classes only applies to --task segmentation');
  if (flags.task === 'segmentation' && flags.classes === undefined) {
    throw new CliInputError('--task segmentation needs --classes <file> (JSON array of class names, index = pixel value)');
  }
}

/** One scorer per task: reads the task's inputs and returns the object to print. */
const SCORERS: Record<ScoreTask, (flags: ScoreFlags) => Promise<object>> = {
  async caption(flags) {
    const refs = asObject(await readJsonFile(flags.refs, 'references'), 'references');
    const preds = asObject(await readJsonFile(flags.preds, 'predictions'), 'predictions');
    const result = evaluateCaptions(refs as ReferenceSet, preds as CandidateSet, {
      tokenized: flags.tokenized ?? false,
      perImage: flags.perImage ?? false,
    });
    return result.perImage ? { ...result.scores, perImage: result.perImage } : result.scores;
  },
  async grounding(flags) {
    const refs = await readJsonFile(flags.refs, 'references');
    const preds = await readJsonFile(flags.preds, 'predictions');
    return computeGrounding(refs as BoxSet, preds as BoxSet);
  },
  async segmentation(flags) {
    const classes = parseClassList(await readJsonFile(flags.classes as string, 'classes'));
    return scoreSegmentationFolders(flags.refs, flags.preds, classes);
  },
  async 'change-mask'(flags) {
    return scoreChangeMaskFolders(flags.refs, flags.preds);
  },
  async classification(flags) {
    const refs = await readJsonFile(flags.refs, 'references');
    const preds = await readJsonFile(flags.preds, 'predictions');
    return computeClassification(refs as LabelSet, preds as LabelSet);
  },
};

/**
 * `rsmoe score`: scores predictions against references for one task and prints exactly one JSON object on
 * stdout, values as fractions.
 * - caption (default): references `{id: [caption, ...]}`, predictions `{id: caption}` or `{id: [caption]}`;
 *   the coco-caption metric table.
 * - grounding: `{id: [[x1, y1, x2, y2], ...]}` on both sides (pixels); acc@0.5, meanIoU, count.
 * - segmentation: two folders of single-channel 8-bit PNG label masks with the same names, and `--classes`;
 *   mIoU, perClassIoU, pixelAccuracy.
 * - change-mask: two folders of single-channel PNG masks (non-zero = changed); F1, IoU, precision, recall.
 * - classification: `{id: label}` on both sides; accuracy, perClass, count.
 */
export function registerScoreCommand(program: Command): void {
  const command = program
    .command('score')
    .description('score model outputs: captions (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D), grounding boxes, segmentation or change masks, class labels')
    .addOption(new Option('--task <task>', 'what is scored').choices(SCORE_TASKS).default('caption'))
    .requiredOption('--refs <path>', 'references: JSON file (caption, grounding, classification) or folder of PNG masks (segmentation, change-mask)')
    .requiredOption('--preds <path>', 'predictions, in the same form as --refs (caption: {id: caption} or {id: [caption]})')
    .option('--classes <file>', 'segmentation: JSON array of class names, index = pixel value (255 = ignore)')
    .option('--tokenized', 'caption: input is already tokenized (space-separated); skip the PTB tokenizer')
    .option('--per-image', 'caption: add per-image scores under "perImage"');
  command.action(
    withInputErrors(command, async (flags: ScoreFlags) => {
      checkTaskFlags(flags);
      const output = await SCORERS[flags.task](flags);
      process.stdout.write(`${JSON.stringify(output)}\n`);
    }),
  );
}
