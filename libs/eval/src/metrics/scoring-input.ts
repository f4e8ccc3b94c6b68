import { ScoringInputError } from '../errors';

/**
 * One image of an evaluated set, after tokenization: the candidate and its references are space-separated
 * token strings. Order matters only for per-image outputs, which follow the input order.
 */
export interface ScoredItem {
  id: string;
  candidate: string;
  references: string[];
}

/** A corpus-level score with the per-image values it was built from (same order as the input). */
export interface MetricResult {
  score: number;
  perImage: number[];
}

/** One reference mask and its prediction: label values row by row, same length. */
export interface MaskPair {
  /** Names the pair in error messages (usually the file name). */
  name: string;
  reference: Uint8Array;
  prediction: Uint8Array;
}

const SHOWN_IDS = 10;

/** `"a", "b" and 3 more`: ids quoted, at most ten shown (for error messages). */
export function describeIds(ids: readonly string[]): string {
  const shown = ids.slice(0, SHOWN_IDS).map((id) => JSON.stringify(id));
  return ids.length > SHOWN_IDS ? `${shown.join(', ')} and ${ids.length - SHOWN_IDS} more` : shown.join(', ');
}

/**
 * Checks that a JSON value is an object keyed by sample id.
 * @throws ScoringInputError naming `what` (e.g. `references`).
 */
export function asIdRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ScoringInputError(`${what} must be a JSON object keyed by sample id`);
  }
  return value as Record<string, unknown>;
}

/**
 * For tasks where a missing prediction scores 0: the reference ids in order, after checking that every
 * prediction id has a reference and that there is at least one reference.
 * @throws ScoringInputError naming the prediction ids without a reference.
 */
export function referenceIdsCoveringPredictions(references: object, predictions: object): string[] {
  const refIds = Object.keys(references);
  const refSet = new Set(refIds);
  const orphans = Object.keys(predictions).filter((id) => !refSet.has(id));
  if (orphans.length > 0) throw new ScoringInputError(`ids without references: ${describeIds(orphans)}`);
  if (refIds.length === 0) throw new ScoringInputError('no samples to score');
  return refIds;
}
