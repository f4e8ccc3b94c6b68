import { join } from 'node:path';
import { readClassFolders } from './class-folder.adapter';
import type { ChangeCaptionSample, ChangeMaskSample, ClassificationSample, GroundingSample, RsunivlmSample } from './dataset';
import { listDatasetFolder, readDatasetJson, readDatasetText } from './dataset-files';
import { parseDiorRsvgSplit, readDiorRsvg, type AnnotationFile } from './dior-rsvg.adapter';
import { readLevirCc } from './levir-cc.adapter';
import { readLevirCd } from './levir-cd.adapter';
import { readRsunivlmEvalList } from './rsunivlm-eval.adapter';

/** DIOR-RSVG split files next to `Annotations/`. */
export type DiorRsvgSplit = 'train' | 'val' | 'test';

/**
 * Reads DIOR-RSVG from its root folder: every `Annotations/*.xml`, and with a split, `<root>/<split>.txt`.
 * Sample images are relative to `<root>/JPEGImages`.
 */
export async function loadDiorRsvg(root: string, split?: DiorRsvgSplit): Promise<GroundingSample[]> {
  const dir = join(root, 'Annotations');
  const names = (await listDatasetFolder(dir)).files.filter((f) => f.toLowerCase().endsWith('.xml'));
  const files: AnnotationFile[] = [];
  // One at a time: the folder holds thousands of small files.
  for (const name of names) files.push({ file: join(dir, name), xml: await readDatasetText(join(dir, name)) });
  if (split === undefined) return readDiorRsvg(files);
  const splitFile = join(root, `${split}.txt`);
  return readDiorRsvg(files, { indices: parseDiorRsvgSplit(await readDatasetText(splitFile), splitFile), file: splitFile });
}

/** Reads LEVIR-CC's caption file (`LevirCCcaptions.json`); images are relative to its `images/` folder. */
export async function loadLevirCc(file: string): Promise<ChangeCaptionSample[]> {
  return readLevirCc(await readDatasetJson(file), file);
}

/** Reads one LEVIR-CD split folder (holding `A/`, `B/` and `label/`); paths are relative to it. */
export async function loadLevirCd(splitDir: string): Promise<ChangeMaskSample[]> {
  const [A, B, label] = await Promise.all(['A', 'B', 'label'].map(async (f) => (await listDatasetFolder(join(splitDir, f))).files));
  return readLevirCd({ A, B, label }, splitDir);
}

/** Reads a class-per-folder set (`<root>/<class>/<image>`); image paths are relative to the root. */
export async function loadClassFolders(root: string): Promise<{ classes: string[]; samples: ClassificationSample[] }> {
  const listing: Record<string, string[]> = {};
  for (const folder of (await listDatasetFolder(root)).folders) listing[folder] = (await listDatasetFolder(join(root, folder))).files;
  return readClassFolders(listing, root);
}

/** Reads RSUniVLM's evaluation list (a JSON array). */
export async function loadRsunivlmEvalList(file: string): Promise<RsunivlmSample[]> {
  return readRsunivlmEvalList(await readDatasetJson(file), file);
}
