import type { CaptionSample } from './dataset';
import { JsonValidator } from './json-validation';

const RAW_KEYS = ['raw', 'raw_1', 'raw_2', 'raw_3', 'raw_4'];

/**
 * NWPU-Captions, keyed by category: `{<category>: [{filename, imgid, split, raw, raw_1, ..., raw_4}]}`.
 * Images live in `<category>/<filename>`; the sample id is `imgid` (else `<category>/<filename>`).
 */
export function readNwpu(json: unknown, file: string): CaptionSample[] {
  const v = new JsonValidator(file);
  const root = v.object(json, '(root)');
  const samples: CaptionSample[] = [];
  const seen = new Set<string>();
  for (const [category, list] of Object.entries(root)) {
    const items = v.array(list, category);
    items.forEach((raw, i) => {
      const at = `${category}[${i}]`;
      const record = v.object(raw, at);
      const filename = v.nonEmptyString(record.filename, `${at}.filename`);
      const references = RAW_KEYS.filter((key) => record[key] !== undefined).map((key) => v.string(record[key], `${at}.${key}`));
      if (references.length === 0) v.fail(at, 'expected captions in raw, raw_1 ... raw_4');
      const id = record.imgid === undefined ? `${category}/${filename}` : v.id(record.imgid, `${at}.imgid`);
      if (seen.has(id)) v.fail(at, `duplicate id ${id}`);
      seen.add(id);
      const split = record.split === undefined ? undefined : v.string(record.split, `${at}.split`);
      samples.push({ id, image: `${category}/${filename}`, references, split, category });
    });
  }
  return samples;
}
