import { RSUNIVLM_TASKS, type RsunivlmSample, type RsunivlmTask } from './dataset';
import { JsonValidator } from './json-validation';

const IMAGE_PLACEHOLDER = /<image>/g;
const TASK_TAG = /^\[([A-Za-z]+)\]/;

/**
 * RSUniVLM's evaluation list: a JSON array of `{sample_id, image: [files], conversations: [{from: "human",
 * value}, {from: "gpt", value}], metadata?}` (LLaVA conversation records; `image` may also be one file name).
 * The human turn starts, after its `<image>` placeholders, with a task tag such as `[VG]`; when it has
 * placeholders, there is one per image.
 * @throws DatasetFormatError naming the file and the first bad field (`[3].conversations[0].value`).
 */
export function readRsunivlmEvalList(json: unknown, file: string): RsunivlmSample[] {
  const v = new JsonValidator(file);
  const seen = new Set<string>();
  return v.array(json, '(root)').map((raw, i) => {
    const at = `[${i}]`;
    const record = v.object(raw, at);
    const id = v.id(record.sample_id, `${at}.sample_id`);
    if (seen.has(id)) v.fail(`${at}.sample_id`, `duplicate sample_id ${id}`);
    seen.add(id);

    const images = typeof record.image === 'string' ? [record.image] : v.array(record.image, `${at}.image`);
    if (images.length === 0) v.fail(`${at}.image`, 'expected at least one image');
    const files = images.map((image, k) => v.nonEmptyString(image, `${at}.image[${k}]`));

    const turns = v.array(record.conversations, `${at}.conversations`);
    if (turns.length !== 2) v.fail(`${at}.conversations`, `expected one human turn and one gpt answer, got ${turns.length} turns`);
    const [human, gpt] = turns.map((turn, k) => v.object(turn, `${at}.conversations[${k}]`));
    if (human.from !== 'human') v.fail(`${at}.conversations[0].from`, `expected "human", got ${JSON.stringify(human.from)}`);
    if (gpt.from !== 'gpt') v.fail(`${at}.conversations[1].from`, `expected "gpt", got ${JSON.stringify(gpt.from)}`);

    const valueAt = `${at}.conversations[0].value`;
    const question = v.nonEmptyString(human.value, valueAt);
    const placeholders = question.match(IMAGE_PLACEHOLDER)?.length ?? 0;
    if (placeholders > 0 && placeholders !== files.length) v.fail(valueAt, `${placeholders} <image> placeholder(s) for ${files.length} image(s)`);
    const prompt = question.replace(IMAGE_PLACEHOLDER, '').trim();
    const tag = TASK_TAG.exec(prompt)?.[1];
    if (tag === undefined || !RSUNIVLM_TASKS.includes(tag as RsunivlmTask)) {
      v.fail(valueAt, `expected a task tag (${RSUNIVLM_TASKS.map((t) => `[${t}]`).join(' ')}) at the start, got ${JSON.stringify(prompt.slice(0, 40))}`);
    }
    return {
      id,
      task: tag as RsunivlmTask,
      prompt,
      answer: v.nonEmptyString(gpt.value, `${at}.conversations[1].value`),
      images: files,
      metadata: record.metadata === undefined ? {} : v.object(record.metadata, `${at}.metadata`),
    };
  });
}
