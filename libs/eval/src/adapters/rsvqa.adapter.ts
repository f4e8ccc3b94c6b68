import type { VqaSample } from './dataset';
import { JsonValidator } from './json-validation';

/** The three RSVQA split files, already parsed, with the names they were read from. */
export interface RsvqaSplitFiles {
  questions: { json: unknown; file: string };
  answers: { json: unknown; file: string };
  images: { json: unknown; file: string };
}

/**
 * RSVQA LR/HR split files (`<prefix>_questions.json`, `_answers.json`, `_images.json`). Only rows with
 * `active: true` belong to the split. Images are `<img_id>.tif`, or the image row's `original_name` when it
 * has one (datasets written by `rsmoe synth` name PNGs there). The sample id is the question id.
 */
export function readRsvqa(files: RsvqaSplitFiles): VqaSample[] {
  const qv = new JsonValidator(files.questions.file);
  const av = new JsonValidator(files.answers.file);
  const iv = new JsonValidator(files.images.file);

  const activeImages = new Map<string, string>();
  iv.array(iv.object(files.images.json, '(root)').images, 'images').forEach((raw, i) => {
    const record = iv.object(raw, `images[${i}]`);
    if (!iv.boolean(record.active, `images[${i}].active`)) return;
    const id = iv.id(record.id, `images[${i}].id`);
    const file = record.original_name === undefined ? `${id}.tif` : iv.nonEmptyString(record.original_name, `images[${i}].original_name`);
    activeImages.set(id, file);
  });

  const answersByQuestion = new Map<string, string[]>();
  av.array(av.object(files.answers.json, '(root)').answers, 'answers').forEach((raw, i) => {
    const at = `answers[${i}]`;
    const record = av.object(raw, at);
    if (!av.boolean(record.active, `${at}.active`)) return;
    const questionId = av.id(record.question_id, `${at}.question_id`);
    const list = answersByQuestion.get(questionId) ?? [];
    list.push(av.string(record.answer, `${at}.answer`));
    answersByQuestion.set(questionId, list);
  });

  const samples: VqaSample[] = [];
  qv.array(qv.object(files.questions.json, '(root)').questions, 'questions').forEach((raw, i) => {
    const at = `questions[${i}]`;
    const record = qv.object(raw, at);
    if (!qv.boolean(record.active, `${at}.active`)) return;
    const id = qv.id(record.id, `${at}.id`);
    const imageId = qv.id(record.img_id, `${at}.img_id`);
    const image = activeImages.get(imageId) ?? qv.fail(`${at}.img_id`, `image ${imageId} is not an active image of the split`);
    const answers = answersByQuestion.get(id) ?? qv.fail(at, `no active answer for question ${id}`);
    samples.push({
      id,
      image,
      question: qv.nonEmptyString(record.question, `${at}.question`),
      answers,
      type: qv.nonEmptyString(record.type, `${at}.type`),
    });
  });
  return samples;
}
