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
