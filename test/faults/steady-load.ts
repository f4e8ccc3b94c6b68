import { performance } from 'node:perf_hooks';

/** What one request of the load got. */
export interface LoadOutcome {
  /** The phase (fault) running when the request was sent. */
  phase: string;
  /** Sent at, in ms since the load started. */
  sentAtMs: number;
  latencyMs: number;
  /** HTTP status; 0 when no response came (hung past its deadline + slack, or the connection failed). */
  status: number;
  hung: boolean;
  requestId?: string;
  /** The error code of an error body. */
  code?: string;
  /** The Retry-After header (seconds) of a refusal. */
  retryAfter?: string;
  degraded?: boolean;
  missingExperts?: string[];
  /** Each expert's status and errorCode, for 200s. */
  experts?: { expertId: string; status: string; errorCode?: string }[];
  caption?: string;
}

export interface SteadyLoadOptions {
  url: string;
  /** Requests in flight at any time. */
  concurrency: number;
  /** The images, sent round robin. */
  images: readonly Buffer[];
  /** Each request's budget (the gateway's `timeoutMs`), in ms. */
  timeoutMs: number;
  /** A request still unanswered this long after its deadline counts as hung and is abandoned. */
  hangSlackMs: number;
}

/**
 * A bounded, steady load on the gateway: `concurrency` loops, each sending one caption request after the
 * other, every outcome recorded under the phase that was current when it was sent.
 */
export class SteadyLoad {
  readonly outcomes: LoadOutcome[] = [];
  phase = 'warm-up';
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly started = performance.now();
  private sent = 0;

  constructor(private readonly options: SteadyLoadOptions) {}

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.options.concurrency }, () => this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Sends `count` extra requests at once, beside the loops, recorded under the current phase. */
  async probe(count: number): Promise<LoadOutcome[]> {
    const outcomes = await Promise.all(Array.from({ length: count }, () => this.send(this.options.images[this.sent++ % this.options.images.length])));
    this.outcomes.push(...outcomes);
    return outcomes;
  }

  /** Ms since the load started (the clock of `sentAtMs`). */
  now(): number {
    return performance.now() - this.started;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const outcome = await this.send(this.options.images[this.sent++ % this.options.images.length]);
      this.outcomes.push(outcome);
      // A refused or failed request is retried after a breath, not in a tight loop.
      if (outcome.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private async send(image: Buffer): Promise<LoadOutcome> {
    const phase = this.phase;
    const sentAtMs = this.now();
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(image)]), 'image.png');
    form.append('timeoutMs', String(this.options.timeoutMs));
    const base = { phase, sentAtMs };
    try {
      const response = await fetch(`${this.options.url}/v1/captions`, {
        method: 'POST',
        body: form,
        signal: AbortSignal.timeout(this.options.timeoutMs + this.options.hangSlackMs),
      });
      const body = (await response.json()) as Record<string, unknown> & { error?: { code?: string } };
      const latencyMs = this.now() - sentAtMs;
      const requestId = response.headers.get('x-request-id') ?? undefined;
      if (response.status !== 200) {
        return { ...base, latencyMs, status: response.status, hung: false, requestId, code: body.error?.code, retryAfter: response.headers.get('retry-after') ?? undefined };
      }
      return {
        ...base,
        latencyMs,
        status: 200,
        hung: false,
        requestId: (body.requestId as string | undefined) ?? requestId,
        degraded: body.degraded as boolean,
        missingExperts: body.missingExperts as string[],
        experts: (body.experts as { expertId: string; status: string; errorCode?: string }[]).map(({ expertId, status, errorCode }) => ({ expertId, status, errorCode })),
        caption: body.caption as string | undefined,
      };
    } catch (error) {
      const latencyMs = this.now() - sentAtMs;
      const hung = (error as Error).name === 'TimeoutError';
      const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
      return { ...base, latencyMs, status: 0, hung, code: hung ? 'hung' : `connection: ${(error as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ''}` };
    }
  }
}

/** One line per phase: sent / ok / degraded / 4xx / 5xx / hung, and the status mix. */
export function summarise(outcomes: readonly LoadOutcome[], phase: string): string {
  const mine = outcomes.filter((outcome) => outcome.phase === phase);
  const count = (predicate: (outcome: LoadOutcome) => boolean) => mine.filter(predicate).length;
  const mix = new Map<string, number>();
  for (const outcome of mine) {
    const key = outcome.status === 200 ? (outcome.degraded ? '200 degraded' : '200') : `${outcome.status} ${outcome.code ?? ''}`.trim();
    mix.set(key, (mix.get(key) ?? 0) + 1);
  }
  const latencies = mine.map((outcome) => outcome.latencyMs).sort((a, b) => a - b);
  const p50 = latencies.length > 0 ? Math.round(latencies[Math.floor(latencies.length / 2)]) : 0;
  const max = latencies.length > 0 ? Math.round(latencies[latencies.length - 1]) : 0;
  return [
    phase.padEnd(24),
    `sent ${String(mine.length).padStart(3)}`,
    `ok ${String(count((o) => o.status === 200 && !o.degraded)).padStart(3)}`,
    `degraded ${String(count((o) => o.status === 200 && o.degraded === true)).padStart(3)}`,
    `4xx ${String(count((o) => o.status >= 400 && o.status < 500)).padStart(3)}`,
    `5xx ${String(count((o) => o.status >= 500)).padStart(3)}`,
    `hung ${String(count((o) => o.hung)).padStart(2)}`,
    `p50 ${p50} ms, max ${max} ms`,
    `[${[...mix].map(([key, n]) => `${key}: ${n}`).join(', ')}]`,
  ].join('  ');
}
