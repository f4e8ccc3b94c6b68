import type { AggregateJobData, ExpertOutputJson, ExpertTask, InferenceResultJson, LabelScoreJson, PercentBoxJson } from '@rsmoe/contracts';
import { parseBoxesText, parseMaskText } from '@rsmoe/region-outputs';

/** The result fields RSUniVLM's tasks fill. */
export type TaskOutputFields = Pick<InferenceResultJson, 'caption' | 'label' | 'labelScores' | 'boxes' | 'mask' | 'query' | 'box'>;

type Reading = { fields: TaskOutputFields } | { unparseable: string };

/** A label as answers write it: case, spacing and a final period do not matter. */
function normaliseLabel(text: string): string {
  return text.replace(/\s+/g, ' ').trim().replace(/\.$/, '').trim().toLowerCase();
}

/**
 * The expert's scores of the pack's labels as probabilities (a softmax of their log-probabilities as whole
 * answers), most likely first: the label is the most likely one, whatever free text the expert generated.
 */
function readScoredClassification(scores: readonly LabelScoreJson[]): Reading {
  const max = Math.max(...scores.map((score) => score.value));
  const weights = scores.map((score) => Math.exp(score.value - max));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const labelScores = scores.map((score, index) => ({ label: score.label, value: weights[index] / total })).sort((a, b) => b.value - a.value);
  return { fields: { label: labelScores[0].label, labelScores } };
}

function readClassification(text: string, labels: readonly string[] | undefined): Reading {
  const answer = normaliseLabel(text);
  if (!labels || labels.length === 0) return answer ? { fields: { label: answer } } : { unparseable: 'the answer is empty' };
  const label = labels.find((candidate) => normaliseLabel(candidate) === answer);
  return label ? { fields: { label } } : { unparseable: `"${text.trim()}" is not one of the pack's ${labels.length} classification labels` };
}

function readBoxes(text: string): Reading {
  const parsed = parseBoxesText(text);
  if (parsed.kind === 'unparseable') return { unparseable: parsed.reason };
  return { fields: { boxes: parsed.boxes.map(({ x1, y1, x2, y2 }): PercentBoxJson => ({ x1, y1, x2, y2 })) } };
}

function readMask(text: string, classes: readonly string[] | undefined): Reading {
  if (!classes || classes.length === 0) return { unparseable: 'no class list to read the mask with' };
  const parsed = parseMaskText(text, classes);
  if (parsed.kind === 'unparseable') return { unparseable: parsed.reason };
  const { width, height, data } = parsed.grid;
  return { fields: { mask: { width, height, labels: Buffer.from(data).toString('base64'), classes: [...classes] } } };
}

function readText(text: string): Reading {
  const caption = text.trim();
  return caption ? { fields: { caption } } : { unparseable: 'the answer is empty' };
}

function read(task: ExpertTask, output: ExpertOutputJson, job: AggregateJobData): Reading {
  const { text } = output;
  switch (task) {
    case 'classification':
      return output.candidateScores?.length ? readScoredClassification(output.candidateScores) : readClassification(text, job.labels);
    case 'grounding':
      return readBoxes(text);
    case 'segmentation':
    case 'change_mask':
      return readMask(text, job.classes);
    case 'referring':
    case 'change_caption':
      return readText(text);
    default:
      return { fields: {} };
  }
}

/**
 * Reads the texts of a tag-routed request's experts as their tasks' outputs (a label, boxes, a mask, a
 * description): an ok output whose text does not parse becomes `unparseable` (errorCode
 * `unparseable_output`, the reason in `error`, the text kept) and counts as missing. The request's own
 * phrase and region are echoed.
 */
export function readTaskOutputs(job: AggregateJobData, experts: readonly ExpertOutputJson[]): { experts: ExpertOutputJson[]; fields: TaskOutputFields } {
  const fields: TaskOutputFields = {
    ...(job.query !== undefined && (job.task === 'grounding' || job.task === 'segmentation') ? { query: job.query } : {}),
    ...(job.box !== undefined && job.task === 'referring' ? { box: job.box } : {}),
    ...(job.task === 'grounding' ? { boxes: [] } : {}),
  };
  const read_ = experts.map((output, index) => {
    const task = job.routed[index]?.task;
    if (output.status !== 'ok' || task === undefined) return output;
    const reading = read(task, output, job);
    if ('unparseable' in reading) return { ...output, status: 'unparseable' as const, errorCode: 'unparseable_output' as const, error: reading.unparseable };
    Object.assign(fields, reading.fields);
    return output;
  });
  return { experts: read_, fields };
}
