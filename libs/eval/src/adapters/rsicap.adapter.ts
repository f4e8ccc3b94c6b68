import type { CaptionSample } from './dataset';
import { JsonValidator } from './json-validation';

/**
 * RSICap: `{annotations: [{image_id, filename, text_input, text_output}]}`; `text_output` is the single
 * (long) reference caption. The sample id is `image_id`.
 */
export function readRsicap(json: unknown, file: string): CaptionSample[] {
  const v = new JsonValidator(file);
  const annotations = v.array(v.object(json, '(root)').annotations, 'annotations');
  const seen = new Set<string>();
  return annotations.map((raw, i) => {
    const at = `annotations[${i}]`;
    const record = v.object(raw, at);
    const id = v.id(record.image_id, `${at}.image_id`);
    if (seen.has(id)) v.fail(`${at}.image_id`, `duplicate image_id ${id}`);
    seen.add(id);
    const image = v.nonEmptyString(record.filename, `${at}.filename`);
    if (record.text_input !== undefined) v.string(record.text_input, `${at}.text_input`);
    return { id, image, references: [v.nonEmptyString(record.text_output, `${at}.text_output`)] };
  });
}
