import type { CaptionSample } from './dataset';
import { JsonValidator } from './json-validation';

/** Scene class from the Karpathy record: UCM's `ucm_landuse_name` folder, else a `class_N.ext` file name. */
function categoryOf(record: Record<string, unknown>, filename: string): string | undefined {
  const ucm = record.ucm_landuse_name;
  if (typeof ucm === 'string' && ucm.includes('/')) return ucm.split('/')[0];
  const match = /^([A-Za-z][A-Za-z_]*?)_?\d+\.\w+$/.exec(filename);
  return match ? match[1] : undefined;
}

/**
 * Karpathy-format caption sets (UCM-captions, Sydney-captions, RSICD):
 * `{images: [{filename, imgid, split, sentids, sentences: [{raw, tokens}]}]}`. The sample id is `imgid`.
 */
export function readKarpathy(json: unknown, file: string): CaptionSample[] {
  const v = new JsonValidator(file);
  const root = v.object(json, '(root)');
  const images = v.array(root.images, 'images');
  const seen = new Set<string>();
  return images.map((raw, i) => {
    const at = `images[${i}]`;
    const record = v.object(raw, at);
    const filename = v.nonEmptyString(record.filename, `${at}.filename`);
    const id = v.id(record.imgid, `${at}.imgid`);
    if (seen.has(id)) v.fail(`${at}.imgid`, `duplicate imgid ${id}`);
    seen.add(id);
    const sentences = v.array(record.sentences, `${at}.sentences`);
    if (sentences.length === 0) v.fail(`${at}.sentences`, 'expected at least one sentence');
    const references = sentences.map((s, j) => v.string(v.object(s, `${at}.sentences[${j}]`).raw, `${at}.sentences[${j}].raw`));
    const split = record.split === undefined ? undefined : v.string(record.split, `${at}.split`);
    return { id, image: filename, references, split, category: categoryOf(record, filename) };
  });
}
