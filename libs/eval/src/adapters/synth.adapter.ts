import type { CaptionSample, VqaSample } from './dataset';
import { JsonValidator } from './json-validation';

/**
 * Synthetic scenes of libs/synth (provisional until that library fixes its manifest):
 * `{samples: [{id, image, captions: [string], theme?, vqa?: [{question, answer, type}]}]}`.
 */
export function readSynth(json: unknown, file: string): { captions: CaptionSample[]; vqa: VqaSample[] } {
  const v = new JsonValidator(file);
  const samples = v.array(v.object(json, '(root)').samples, 'samples');
  const captions: CaptionSample[] = [];
  const vqa: VqaSample[] = [];
  const seen = new Set<string>();
  samples.forEach((raw, i) => {
    const at = `samples[${i}]`;
    const record = v.object(raw, at);
    const id = v.id(record.id, `${at}.id`);
    if (seen.has(id)) v.fail(`${at}.id`, `duplicate id ${id}`);
    seen.add(id);
    const image = v.nonEmptyString(record.image, `${at}.image`);
    const refs = v.array(record.captions, `${at}.captions`).map((c, j) => v.string(c, `${at}.captions[${j}]`));
    if (refs.length === 0) v.fail(`${at}.captions`, 'expected at least one caption');
    const category = record.theme === undefined ? undefined : v.string(record.theme, `${at}.theme`);
    captions.push({ id, image, references: refs, category });
    if (record.vqa !== undefined) {
      v.array(record.vqa, `${at}.vqa`).forEach((pair, j) => {
        const pat = `${at}.vqa[${j}]`;
        const qa = v.object(pair, pat);
        vqa.push({
          id: `${id}#${j}`,
          image,
          question: v.nonEmptyString(qa.question, `${pat}.question`),
          answers: [v.string(qa.answer, `${pat}.answer`)],
          type: v.nonEmptyString(qa.type, `${pat}.type`),
        });
      });
    }
  });
  return { captions, vqa };
}
