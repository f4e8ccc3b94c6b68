import { performance } from 'node:perf_hooks';
import type { LanguageModel } from '../language-model';
import { applyRepetitionPenalty, logSoftmax, topKIndices } from '../sampling';
import type { SearchRow } from './greedy-search';
import type { FinishReason } from './stopping-criteria';

export interface BeamOutcome {
  tokens: number[];
  finishReason: FinishReason;
  prefillMs: number;
  decodeMs: number;
  firstTokenAt: number;
}

interface Hypothesis {
  tokens: number[];
  score: number;
  finishedBy: FinishReason;
}

/**
 * Beam search for one prompt, its beams run as the batch. A candidate that the stopping criteria end (EOS
 * or a stop string) becomes a finished hypothesis, as Hugging Face treats EOS; the search stops once
 * numBeams hypotheses are finished or the token budget is spent. At the request's deadline or on cancel
 * it stops at once with the best hypothesis so far (finished or live), reported as `deadline`/`cancelled`.
 */
export async function beamSearch(model: LanguageModel, row: SearchRow): Promise<BeamOutcome> {
  const prefillStart = performance.now();
  const cache = model.newCache(1);
  const promptLength = row.inputIds.length;
  const prefillLogits = await model.prefill([row], cache);
  const prefillMs = performance.now() - prefillStart;
  const { numBeams, lengthPenalty, repetitionPenalty } = row.options;
  const finished: Hypothesis[] = [];
  const normalise = (score: number, length: number): number => score / Math.max(1, length) ** lengthPenalty;
  let beams: { tokens: number[]; score: number }[] = [{ tokens: [], score: 0 }];
  let rowLogits = [prefillLogits[0]];
  let firstTokenAt = 0;
  const decodeStart = performance.now();
  for (let step = 0; step < row.stopping.maxNewTokens; step++) {
    const interrupted = row.stopping.interrupted();
    if (interrupted) {
      const best = [...finished, ...beams.map((beam) => ({ ...beam, score: normalise(beam.score, beam.tokens.length), finishedBy: interrupted }))]
        .filter((hypothesis) => hypothesis.tokens.length > 0)
        .sort((a, b) => b.score - a.score)[0];
      return { tokens: best?.tokens ?? [], finishReason: interrupted, prefillMs, decodeMs: performance.now() - decodeStart, firstTokenAt };
    }
    const candidates: { beam: number; token: number; score: number }[] = [];
    beams.forEach((beam, index) => {
      const logits = rowLogits[index];
      applyRepetitionPenalty(logits, new Set([...row.inputIds, ...beam.tokens]), repetitionPenalty);
      const logProbs = logSoftmax(logits);
      for (const token of topKIndices(logProbs, 2 * numBeams)) {
        candidates.push({ beam: index, token, score: beam.score + logProbs[token] });
      }
    });
    candidates.sort((a, b) => b.score - a.score || a.beam - b.beam || a.token - b.token);
    const next: { tokens: number[]; score: number }[] = [];
    const sources: number[] = [];
    for (const [rank, candidate] of candidates.entries()) {
      const tokens = [...beams[candidate.beam].tokens, candidate.token];
      const reason = row.stopping.check(tokens);
      // An interruption is handled once per step, above: here only the sequence's own ends count.
      if (reason === 'eos' || reason === 'stop_string') {
        // Like Hugging Face: an ended candidate below the top numBeams is not a hypothesis. EOS is not part
        // of the scored length; a stop string's tokens are.
        if (rank < numBeams) {
          const length = reason === 'eos' ? tokens.length - 1 : tokens.length;
          finished.push({ tokens, score: normalise(candidate.score, length), finishedBy: reason });
        }
      } else {
        next.push({ tokens, score: candidate.score });
        sources.push(candidate.beam);
      }
      if (next.length === numBeams) break;
    }
    if (step === 0) firstTokenAt = performance.now();
    if (finished.length >= numBeams || step === row.stopping.maxNewTokens - 1 || next.length === 0) {
      if (finished.length < numBeams) {
        for (const beam of next) finished.push({ ...beam, score: normalise(beam.score, beam.tokens.length), finishedBy: 'length' });
      }
      break;
    }
    beams = next;
    cache.selectRows(sources);
    const columns = promptLength + step + 1;
    rowLogits = await model.step(
      beams.map((beam) => beam.tokens[beam.tokens.length - 1]),
      cache,
      beams.map(() => promptLength + step),
      new BigInt64Array(beams.length * columns).fill(1n),
    );
  }
  finished.sort((a, b) => b.score - a.score);
  const best = finished[0];
  return { tokens: best.tokens, finishReason: best.finishedBy, prefillMs, decodeMs: performance.now() - decodeStart, firstTokenAt };
}
