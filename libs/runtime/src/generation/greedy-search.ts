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
 * Greedy or sampled decoding of a padded batch. Finished rows (a row past its deadline or cancelled
 * included) are fed padding until every row is done, so each row gets exactly the tokens it would get
 * alone and the others keep generating.
 */
export async function greedyOrSampleSearch(model: LanguageModel, rows: readonly SearchRow[], padTokenId: number): Promise<BatchOutcome> {
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
  // The attention mask grows by one column per step; padding columns stay 0 for their rows.
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
    const nextTokens = rows.map((row, b) => {
      if (finishReasons[b]) return padTokenId;
      const rowLogits = logits[b];
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
    if (finishReasons.every(Boolean)) break;
    const columns = paddedLength + step + 1;
    if (singleRowMask) {
      mask = singleRowMask.subarray(0, columns);
    } else {
      const grown = new BigInt64Array(batch * columns);
      for (let b = 0; b < batch; b++) {
        grown.set(mask.subarray(b * (columns - 1), (b + 1) * (columns - 1)), b * columns);
        grown[b * columns + columns - 1] = 1n;
      }
      mask = grown;
    }
    logits = await model.step(nextTokens, cache, rows.map((row) => row.inputIds.length + step), mask);
  }
  return { tokens, finishReasons: finishReasons as FinishReason[], prefillMs, decodeMs, firstTokenAt };
}
