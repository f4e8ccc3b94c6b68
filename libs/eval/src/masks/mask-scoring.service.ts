import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ScoringInputError } from '../errors';
import { ChangeMaskCounter, type ChangeMaskResult } from '../metrics/change-mask.metric';
import { describeIds, type MaskPair } from '../metrics/scoring-input';
import { SegmentationCounter, type SegmentationResult } from '../metrics/segmentation.metric';
import { readPngMask } from './png-mask.reader';

async function pngNames(dir: string, what: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => e.isFile() && /\.png$/i.test(e.name))
      .map((e) => e.name)
      .sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : (error as Error).message;
    throw new ScoringInputError(`${what} ${dir}: ${reason}`);
  }
}

/**
 * The PNG file names of a reference folder, after checking that the prediction folder holds the same names
 * (other files are ignored).
 * @throws ScoringInputError naming the folders' missing or extra files, or an empty reference folder.
 */
export async function pairMaskFolders(referenceDir: string, predictionDir: string): Promise<string[]> {
  const refs = await pngNames(referenceDir, 'references');
  const preds = await pngNames(predictionDir, 'predictions');
  if (refs.length === 0) throw new ScoringInputError(`references ${referenceDir}: no PNG masks`);
  const refSet = new Set(refs);
  const predSet = new Set(preds);
  const missing = refs.filter((name) => !predSet.has(name));
  const extra = preds.filter((name) => !refSet.has(name));
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`prediction masks missing in ${predictionDir}: ${describeIds(missing)}`);
  if (extra.length > 0) problems.push(`prediction masks without a reference in ${referenceDir}: ${describeIds(extra)}`);
  if (problems.length > 0) throw new ScoringInputError(problems.join('; '));
  return refs;
}

/** Decodes the mask pairs one by one (a set of large masks is never held in memory at once). */
async function* maskPairs(referenceDir: string, predictionDir: string): AsyncGenerator<MaskPair> {
  for (const name of await pairMaskFolders(referenceDir, predictionDir)) {
    const predFile = join(predictionDir, name);
    const [reference, prediction] = await Promise.all([readPngMask(join(referenceDir, name)), readPngMask(predFile)]);
    if (reference.width !== prediction.width || reference.height !== prediction.height) {
      throw new ScoringInputError(
        `${predFile}: ${prediction.width}×${prediction.height} pixels, but its reference is ${reference.width}×${reference.height}`,
      );
    }
    yield { name, reference: reference.data, prediction: prediction.data };
  }
}

/**
 * Semantic segmentation over two folders of single-channel 8-bit PNG label masks with the same file names
 * (see `SegmentationCounter` for the counting rules).
 * @throws ScoringInputError naming the folder or file at fault.
 */
export async function scoreSegmentationFolders(
  referenceDir: string,
  predictionDir: string,
  classes: readonly string[],
): Promise<SegmentationResult> {
  const counter = new SegmentationCounter(classes);
  for await (const pair of maskPairs(referenceDir, predictionDir)) counter.add(pair);
  return counter.result();
}

/**
 * Change detection over two folders of single-channel 8-bit PNG masks with the same file names, non-zero =
 * changed (see `ChangeMaskResult` for the 0/0 rules).
 * @throws ScoringInputError naming the folder or file at fault.
 */
export async function scoreChangeMaskFolders(referenceDir: string, predictionDir: string): Promise<ChangeMaskResult> {
  const counter = new ChangeMaskCounter();
  for await (const pair of maskPairs(referenceDir, predictionDir)) counter.add(pair);
  return counter.result();
}
