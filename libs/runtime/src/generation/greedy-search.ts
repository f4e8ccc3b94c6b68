import { performance } from 'node:perf_hooks';
import type { KvCache } from '../kv-cache';
import type { LanguageModel, PromptRow } from '../language-model';
import { applyRepetitionPenalty, argmax, createRng, sampleToken } from '../sampling';
import type { ResolvedGenerationOptions } from '../generation-options';
import type { FinishReason, StoppingCriteria } from './stopping-criteria';

export interface SearchRow extends PromptRow {
  options: ResolvedGenerationOptions;
  stopping: StoppingCriteria;
}

export interface BatchOutcome {
  tokens: number[][];
  finishReasons: FinishReason[];
  prefillMs: number;
  decodeMs: number[];
  firstTokenAt: number;
}

/**
 * Greedy or sampled decoding of a padded batch. A row that finishes (a row past its deadline or cancelled
 * included) leaves the batch: the cache and the attention mask keep only the rows still generating, so a
 * micro-batch costs the sum of its rows' lengths, not the longest row's length times the batch. The rows
 * left keep their padding columns, so each still gets the tokens it would get alone.
 */
export async function greedyOrSampleSearch(model: LanguageModel, rows: readonly SearchRow[]): Promise<BatchOutcome> {
  const batch = rows.length;
  const prefillStart = performance.now();
  const cache: KvCache = model.newCache(batch);
  let logits = await model.prefill(rows, cache);
  const prefillMs = performance.now() - prefillStart;
  const paddedLength = Math.max(...rows.map((row) => row.inputIds.length));
  const tokens: number[][] = rows.map(() => []);
  const finishReasons: (FinishReason | undefined)[] = rows.map(() => undefined);
  const seen = rows.map((row) => new Set(row.inputIds));
  const random = rows.map((row) => createRng(row.options.seed));
  const decodeMs = rows.map(() => 0);
  // The rows still in the batch, by their index in `rows`; logits[k] and the cache's row k are active[k]'s.
  let active = rows.map((_, b) => b);
  // The attention mask (one row per active row) grows by one column per step; padding columns stay 0.
  let mask = new BigInt64Array(batch * paddedLength);
  rows.forEach((row, b) => {
    const pad = paddedLength - row.inputIds.length;
    mask.fill(1n, b * paddedLength, (b + 1) * paddedLength);
    mask.fill(0n, b * paddedLength + row.padAt, b * paddedLength + row.padAt + pad);
  });
  // A lone row has no padding: its mask is all ones, one buffer seen through a longer view at each step.
  const singleRowMask =
    batch === 1 ? new BigInt64Array(paddedLength + Math.max(...rows.map((row) => row.stopping.maxNewTokens))).fill(1n) : undefined;
  const decodeStart = performance.now();
  let firstTokenAt = 0;
  for (let step = 0; ; step++) {
    const nextTokens = active.map((b, k) => {
      const row = rows[b];
      const rowLogits = logits[k];
      const { options } = row;
      applyRepetitionPenalty(rowLogits, seen[b], options.repetitionPenalty);
      const token = options.doSample ? sampleToken(rowLogits, options, random[b]) : argmax(rowLogits);
      tokens[b].push(token);
      seen[b].add(token);
      finishReasons[b] = row.stopping.check(tokens[b]);
      if (finishReasons[b]) decodeMs[b] = performance.now() - decodeStart;
      return token;
    });
    if (step === 0) firstTokenAt = performance.now();
    const columns = paddedLength + step;
    const kept = active.flatMap((b, k) => (finishReasons[b] ? [] : [k]));
    if (kept.length === 0) break;
    if (kept.length < active.length) {
      cache.selectRows(kept);
      const compacted = new BigInt64Array(kept.length * columns);
      kept.forEach((k, target) => compacted.set(mask.subarray(k * columns, (k + 1) * columns), target * columns));
      mask = compacted;
      active = kept.map((k) => active[k]);
    }
    if (singleRowMask) {
      mask = singleRowMask.subarray(0, columns + 1);
    } else {
      const width = columns + 1;
      const grown = new BigInt64Array(active.length * width);
      for (let k = 0; k < active.length; k++) {
        grown.set(mask.subarray(k * columns, (k + 1) * columns), k * width);
        grown[k * width + width - 1] = 1n;
      }
      mask = grown;
    }
    logits = await model.step(
      kept.map((k) => nextTokens[k]),
      cache,
      active.map((b) => rows[b].inputIds.length + step),
      mask,
    );
  }
  return { tokens, finishReasons: finishReasons as FinishReason[], prefillMs, decodeMs, firstTokenAt };
}
