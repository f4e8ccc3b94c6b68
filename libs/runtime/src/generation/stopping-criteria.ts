/** Why a sequence stopped. */
export type FinishReason = 'eos' | 'stop_string' | 'length';

/**
 * When one sequence is done: an end-of-sequence token, a stop string in its text, or its token budget.
 * The one rule every decoding mode (greedy, sampling, beam search) applies to each of its sequences.
 */
export class StoppingCriteria {
  constructor(
    private readonly eosTokenIds: ReadonlySet<number>,
    private readonly stopStrings: readonly string[],
    readonly maxNewTokens: number,
    private readonly decode: (ids: readonly number[]) => string,
  ) {}

  /** The reason `tokens` (the generated ids so far, the newest last) should stop, if any. */
  check(tokens: readonly number[]): FinishReason | undefined {
    if (tokens.length > 0 && this.eosTokenIds.has(tokens[tokens.length - 1])) return 'eos';
    if (this.stopStrings.length > 0) {
      const text = this.decode(tokens);
      if (this.stopStrings.some((stop) => text.includes(stop))) return 'stop_string';
    }
    if (tokens.length >= this.maxNewTokens) return 'length';
    return undefined;
  }

  /** The text of finished tokens, cut before the first stop string when one stopped them. */
  finalText(tokens: readonly number[], reason: FinishReason): string {
    const text = this.decode(tokens);
    if (reason !== 'stop_string') return text;
    const cuts = this.stopStrings.map((stop) => text.indexOf(stop)).filter((index) => index >= 0);
    return cuts.length > 0 ? text.slice(0, Math.min(...cuts)) : text;
  }
}
