import { GatewayRequestError, gatewayHeaders, refusalMessage, unansweredError, type GatewayAccess } from './gateway-access';

/** What the gateway answers for one request (the fields `rsmoe eval` uses). */
export interface GatewayAnswer {
  requestId?: string;
  /** `caption` for /v1/captions, `answer` for /v1/vqa. */
  text: string;
  degraded: boolean;
  /** Server-side total time, `timings.totalMs`. */
  totalMs?: number;
  /** The whole JSON result, as the gateway sent it. */
  raw: Record<string, unknown>;
}

export interface GatewayClientOptions extends GatewayAccess {
  /** Attempts for 429 and 503 answers and network errors, the first included. Default 4. */
  maxAttempts?: number;
  /** First backoff delay in ms, doubled each retry (a Retry-After header wins when shorter than 30 s). Default 500. */
  backoffMs?: number;
  /** Per-request timeout in ms. Default 120000. */
  timeoutMs?: number;
}

const RETRYABLE = new Set([429, 503]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Talks to the gateway's `POST /v1/captions` and `POST /v1/vqa` (multipart/form-data) with Node's fetch. */
export class GatewayClient {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly keySent: boolean;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;

  constructor(options: GatewayClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.headers = gatewayHeaders(options);
    this.keySent = options.apiKey !== undefined;
    this.maxAttempts = options.maxAttempts ?? 4;
    this.backoffMs = options.backoffMs ?? 500;
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  caption(image: Uint8Array, filename: string): Promise<GatewayAnswer> {
    return this.post('/v1/captions', image, filename, {}, 'caption');
  }

  vqa(image: Uint8Array, filename: string, question: string): Promise<GatewayAnswer> {
    return this.post('/v1/vqa', image, filename, { question }, 'answer');
  }

  private async post(path: string, image: Uint8Array, filename: string, fields: Record<string, string>, textField: 'caption' | 'answer'): Promise<GatewayAnswer> {
    let lastError: GatewayRequestError | undefined;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const form = new FormData();
      form.append('image', new Blob([image]), filename);
      for (const [key, value] of Object.entries(fields)) form.append(key, value);
      let response: Response;
      try {
        response = await fetch(`${this.base}${path}`, { method: 'POST', body: form, headers: this.headers, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (error) {
        lastError = unansweredError(this.base, error, this.timeoutMs);
        if (attempt < this.maxAttempts) await sleep(this.backoffMs * 2 ** (attempt - 1));
        continue;
      }
      const body = await response.text();
      const json = safeJson(body);
      if (response.ok) {
        const text = json?.[textField];
        if (typeof text !== 'string') throw new GatewayRequestError(response.status, 'bad_response', `response has no string "${textField}"`);
        const timings = json?.timings as { totalMs?: unknown } | undefined;
        return {
          requestId: typeof json?.requestId === 'string' ? json.requestId : undefined,
          text,
          degraded: json?.degraded === true,
          totalMs: typeof timings?.totalMs === 'number' ? timings.totalMs : undefined,
          raw: json ?? {},
        };
      }
      const err = (json?.error ?? {}) as { code?: unknown; message?: unknown; requestId?: unknown };
      lastError = new GatewayRequestError(
        response.status,
        typeof err.code === 'string' ? err.code : `http_${response.status}`,
        refusalMessage(response.status, typeof err.message === 'string' ? err.message : body.slice(0, 200), this.keySent),
        typeof err.requestId === 'string' ? err.requestId : undefined,
      );
      if (!RETRYABLE.has(response.status) || attempt === this.maxAttempts) break;
      const retryAfter = Number(response.headers.get('retry-after'));
      const delay = Number.isFinite(retryAfter) && retryAfter > 0 && retryAfter < 30 ? retryAfter * 1000 : this.backoffMs * 2 ** (attempt - 1);
      await sleep(delay);
    }
    throw lastError ?? new GatewayRequestError(0, 'unknown', 'request failed');
  }
}

function safeJson(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
