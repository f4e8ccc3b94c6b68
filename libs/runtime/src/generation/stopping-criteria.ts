/**
 * Why a sequence stopped: an end-of-sequence token, a stop string, the token budget, the request's
 * deadline (`deadline`), or its caller gave up (`cancelled`: the request's AbortSignal fired for another
 * reason than a timeout). The last two are interruptions: the text is what was generated until then.
 */
export type FinishReason = 'eos' | 'stop_string' | 'length' | 'deadline' | 'cancelled';

/** The reasons that mean the search was cut short rather than finished. */
export type InterruptReason = Extract<FinishReason, 'deadline' | 'cancelled'>;

/** When a request must stop whatever its tokens: its deadline and its caller's signal. */
export interface InterruptOptions {
  /**
   * Fires when the caller gives up. A reason named `TimeoutError` (what `AbortSignal.timeout()` and the
   * expert's deadline signal give) counts as the deadline; any other reason as `cancelled`.
   */
  signal?: AbortSignal;
  /** The request's deadline, Unix ms: checked at every step, needing no timer to fire. */
  deadlineUnixMs?: number;
  /** Clock for the deadline (default Date.now). */
  now?: () => number;
}

/** `deadline` when the signal's reason is a timeout, else `cancelled`. */
export function interruptReasonOf(signal: AbortSignal): InterruptReason {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name === 'TimeoutError' ? 'deadline' : 'cancelled';
}

/**
 * When one sequence is done: an end-of-sequence token, a stop string in its text, its token budget, or
 * (checked after those) its request's deadline or cancellation. The one rule every decoding mode (greedy,
 * sampling, beam search) applies to each of its sequences.
 */
export class StoppingCriteria {
  private readonly now: () => number;

  constructor(
    private readonly eosTokenIds: ReadonlySet<number>,
    private readonly stopStrings: readonly string[],
    readonly maxNewTokens: number,
    private readonly decode: (ids: readonly number[]) => string,
    private readonly interrupt: InterruptOptions = {},
  ) {
    this.now = interrupt.now ?? Date.now;
  }

  /** The reason `tokens` (the generated ids so far, the newest last) should stop, if any. */
  check(tokens: readonly number[]): FinishReason | undefined {
    if (tokens.length > 0 && this.eosTokenIds.has(tokens[tokens.length - 1])) return 'eos';
    if (this.stopStrings.length > 0) {
      const text = this.decode(tokens);
      if (this.stopStrings.some((stop) => text.includes(stop))) return 'stop_string';
    }
    if (tokens.length >= this.maxNewTokens) return 'length';
    return this.interrupted();
  }

  /** `deadline` or `cancelled` when the request must stop now, whatever its tokens; else undefined. */
  interrupted(): InterruptReason | undefined {
    const { signal, deadlineUnixMs } = this.interrupt;
    // The clock first: a signal fired at the deadline whatever its reason still reads as the deadline.
    if (deadlineUnixMs !== undefined && this.now() >= deadlineUnixMs) return 'deadline';
    if (signal?.aborted) return interruptReasonOf(signal);
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
