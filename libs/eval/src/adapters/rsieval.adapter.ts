import type { CaptionSample, VqaSample } from './dataset';
import { JsonValidator } from './json-validation';

/**
 * RSIEval: `{annotations: [{filename, caption, qa_pairs: [{question, answer, type}]}]}`. Gives one caption
 * sample per image (id = filename) and one VQA sample per pair (id = `<filename>#<index>`).
 */
export function readRsieval(json: unknown, file: string): { captions: CaptionSample[]; vqa: VqaSample[] } {
  const v = new JsonValidator(file);
  const annotations = v.array(v.object(json, '(root)').annotations, 'annotations');
  const captions: CaptionSample[] = [];
  const vqa: VqaSample[] = [];
  const seen = new Set<string>();
  annotations.forEach((raw, i) => {
    const at = `annotations[${i}]`;
    const record = v.object(raw, at);
    const image = v.nonEmptyString(record.filename, `${at}.filename`);
    if (seen.has(image)) v.fail(`${at}.filename`, `duplicate filename ${image}`);
    seen.add(image);
    captions.push({ id: image, image, references: [v.nonEmptyString(record.caption, `${at}.caption`)] });
    v.array(record.qa_pairs, `${at}.qa_pairs`).forEach((pair, j) => {
      const pat = `${at}.qa_pairs[${j}]`;
      const qa = v.object(pair, pat);
      vqa.push({
        id: `${image}#${j}`,
        image,
        question: v.nonEmptyString(qa.question, `${pat}.question`),
        answers: [v.string(qa.answer, `${pat}.answer`)],
        type: v.nonEmptyString(qa.type, `${pat}.type`),
      });
    });
  });
  return { captions, vqa };
}
