import type { ChangeCaptionSample } from './dataset';
import { JsonValidator } from './json-validation';

/**
 * LEVIR-CC (`LevirCCcaptions.json`): `{images: [{filepath, filename, split, changeflag?, sentences: [{raw,
 * tokens}]}]}`; the pair's images are `<filepath>/A/<filename>` (before) and `<filepath>/B/<filename>`
 * (after) under the images folder. The sample id is the file name (it carries the split: `test_000001.png`).
 */
export function readLevirCc(json: unknown, file: string): ChangeCaptionSample[] {
  const v = new JsonValidator(file);
  const images = v.array(v.object(json, '(root)').images, 'images');
  const seen = new Set<string>();
  return images.map((raw, i) => {
    const at = `images[${i}]`;
    const record = v.object(raw, at);
    const filepath = v.nonEmptyString(record.filepath, `${at}.filepath`);
    const filename = v.nonEmptyString(record.filename, `${at}.filename`);
    if (seen.has(filename)) v.fail(`${at}.filename`, `duplicate filename ${filename}`);
    seen.add(filename);
    const sentences = v.array(record.sentences, `${at}.sentences`);
    if (sentences.length === 0) v.fail(`${at}.sentences`, 'expected at least one sentence');
    const sample: ChangeCaptionSample = {
      id: filename,
      before: `${filepath}/A/${filename}`,
      after: `${filepath}/B/${filename}`,
      references: sentences.map((s, j) => v.string(v.object(s, `${at}.sentences[${j}]`).raw, `${at}.sentences[${j}].raw`)),
    };
    if (record.split !== undefined) sample.split = v.string(record.split, `${at}.split`);
    if (record.changeflag !== undefined) {
      const flag = record.changeflag;
      if (flag !== 0 && flag !== 1 && typeof flag !== 'boolean') v.fail(`${at}.changeflag`, `expected 0 or 1, got ${JSON.stringify(flag)}`);
      sample.changed = flag === 1 || flag === true;
    }
    return sample;
  });
}
