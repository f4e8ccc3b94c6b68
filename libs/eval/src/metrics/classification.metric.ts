import { ScoringInputError } from '../errors';
import { asIdRecord, referenceIdsCoveringPredictions } from './scoring-input';

/** One label per sample id: `{"<id>": "label"}`. */
export type LabelSet = Readonly<Record<string, string>>;

/** Scene-classification scores (fractions). */
export interface ClassificationResult {
  /** Correct predictions over all reference samples. */
  accuracy: number;
  /** Per reference class (normalised label, keys sorted): correct over the samples of that class. */
  perClass: Record<string, number>;
  /** Number of reference samples. */
  count: number;
}

/**
 * Label comparison key: trimmed, lowercase, inner whitespace collapsed, one final period dropped
 * (`" Dense Residential."` → `"dense residential"`). Spelling variants beyond that stay different classes.
 */
export function normalizeClassLabel(label: string): string {
  return label.trim().toLowerCase().replace(/\s+/g, ' ').replace(/\.$/, '').trim();
}

function checkedLabel(value: unknown, id: string, what: string): string {
  if (typeof value !== 'string' || value.trim().length === 0) {
    throw new ScoringInputError(`${what} of id ${JSON.stringify(id)} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return normalizeClassLabel(value);
}

/**
 * Overall and per-class accuracy of predicted labels after `normalizeClassLabel`. A reference id without a
 * prediction counts as wrong; a prediction id without a reference is an error.
 * @throws ScoringInputError for ids without a reference, or a label that is not a non-empty string.
 */
export function computeClassification(references: LabelSet, predictions: LabelSet): ClassificationResult {
  const refs = asIdRecord(references, 'references');
  const preds = asIdRecord(predictions, 'predictions');
  const ids = referenceIdsCoveringPredictions(refs, preds);
  const predicted = new Map(Object.entries(preds).map(([id, label]) => [id, checkedLabel(label, id, 'prediction')]));
  const perClass = new Map<string, { correct: number; total: number }>();
  let correct = 0;
  for (const id of ids) {
    const label = checkedLabel(refs[id], id, 'reference');
    const bucket = perClass.get(label) ?? { correct: 0, total: 0 };
    bucket.total++;
    if (predicted.get(id) === label) {
      bucket.correct++;
      correct++;
    }
    perClass.set(label, bucket);
  }
  const byName = [...perClass].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    accuracy: correct / ids.length,
    perClass: Object.fromEntries(byName.map(([name, { correct: right, total }]) => [name, right / total])),
    count: ids.length,
  };
}
