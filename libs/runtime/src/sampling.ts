/**
 * Logits processing and token selection, on one row of logits at a time. Plain functions over typed arrays
 * so the decoding loops stay readable and these can be unit-tested without a model.
 */

/** A seeded pseudo-random generator (mulberry32): same seed, same draws, on every platform. */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * CTRL-style repetition penalty, as Hugging Face applies it: for every token already in the sequence,
 * a positive logit is divided by the penalty and a negative one multiplied by it.
 */
export function applyRepetitionPenalty(logits: Float32Array, seenTokens: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const token of seenTokens) {
    const value = logits[token];
    logits[token] = value > 0 ? value / penalty : value * penalty;
  }
}

/** Index of the largest value; the lowest index wins a tie. */
export function argmax(values: Float32Array): number {
  let best = 0;
  let bestValue = values[0];
  for (let i = 1; i < values.length; i++) {
    if (values[i] > bestValue) {
      bestValue = values[i];
      best = i;
    }
  }
  return best;
}

/** Log-softmax computed in double precision. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logSum = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - logSum;
  return out;
}

/** Indices of the k largest values, largest first; ties keep the lower index first. */
export function topKIndices(values: ArrayLike<number>, k: number): number[] {
  const count = Math.min(k, values.length);
  if (count * 8 >= values.length) {
    const order = Array.from({ length: values.length }, (_, i) => i);
    order.sort((a, b) => values[b] - values[a] || a - b);
    return order.slice(0, count);
  }
  // Small k over a large vocabulary: one pass keeping a sorted shortlist beats sorting every logit.
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (best.length === count && value <= values[best[count - 1]]) continue;
    let at = best.length;
    while (at > 0 && values[best[at - 1]] < value) at--;
    best.splice(at, 0, i);
    if (best.length > count) best.pop();
  }
  return best;
}

export interface SamplingParams {
  temperature: number;
  /** Keep only the k most likely tokens; 0 disables. */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 disables. */
  topP: number;
}

/** Draws one token after temperature, top-k and top-p (nucleus) filtering, in Hugging Face's order. */
export function sampleToken(logits: Float32Array, params: SamplingParams, random: () => number): number {
  const scaled = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) scaled[i] = logits[i] / params.temperature;
  let candidates = topKIndices(scaled, params.topK > 0 ? Math.min(params.topK, scaled.length) : scaled.length);
  const max = scaled[candidates[0]];
  let weights = candidates.map((index) => Math.exp(scaled[index] - max));
  if (params.topP < 1) {
    const total = weights.reduce((a, b) => a + b, 0);
    let cumulative = 0;
    let keep = 0;
    while (keep < weights.length) {
      cumulative += weights[keep] / total;
      keep++;
      if (cumulative >= params.topP) break;
    }
    candidates = candidates.slice(0, keep);
    weights = weights.slice(0, keep);
  }
  const total = weights.reduce((a, b) => a + b, 0);
  let threshold = random() * total;
  for (let i = 0; i < candidates.length; i++) {
    threshold -= weights[i];
    if (threshold <= 0) return candidates[i];
  }
  return candidates[candidates.length - 1];
}
