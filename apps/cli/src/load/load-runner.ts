import { gatewayHeaders } from '../commands/gateway-access';
import type { LoadOptions } from './load-options';
import type { LoadSample } from './load-report';

/** What a run needs from outside: the API key, HTTP, a clock and sleep (tests pass their own). */
export interface LoadDeps {
  /** Sent as `Authorization: Bearer` with every request; kept out of LoadOptions, which `--json` prints. */
  apiKey?: string;
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** The image every request sends (the same bytes: the feature cache will serve repeats; vary images for cold numbers). */
export interface LoadImage {
  bytes: Uint8Array;
  filename: string;
  mediaType: string;
}

/**
 * Sends requests to the gateway for `durationS` with at most `concurrency` in flight: as fast as answers come
 * (closed loop) or started at `rate` per second (open loop; a start that finds every slot busy waits for one).
 * Never retries: every answer, 429 and 5xx included, is one sample.
 */
export async function runLoad(options: LoadOptions, image: LoadImage, deps: LoadDeps = {}): Promise<{ samples: LoadSample[]; elapsedMs: number }> {
  const doFetch = deps.fetch ?? fetch;
  const now = deps.now ?? (() => performance.now());
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const endpoint = `${options.url}/v1/${options.task === 'caption' ? 'captions' : 'vqa'}`;
  const headers = gatewayHeaders(deps);
  const samples: LoadSample[] = [];
  const started = now();
  const endsAt = started + options.durationS * 1000;
  let next = 0;

  const one = async (): Promise<LoadSample> => {
    const form = new FormData();
    form.append('image', new Blob([image.bytes], { type: image.mediaType }), image.filename);
    if (options.task === 'vqa') form.append('question', options.question);
    const sent = now();
    try {
      const response = await doFetch(endpoint, { method: 'POST', body: form, headers, signal: AbortSignal.timeout(options.timeoutMs) });
      const text = await response.text();
      const latencyMs = now() - sent;
      let body: { degraded?: unknown; error?: { code?: unknown } } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // not JSON: counted by status alone
      }
      if (response.status === 200) return { status: 200, latencyMs, degraded: body.degraded === true };
      const code = typeof body.error?.code === 'string' ? body.error.code : 'unknown';
      return { status: response.status, latencyMs, errorCode: code };
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      return { status: 0, latencyMs: now() - sent, errorCode: timedOut ? 'client_timeout' : 'network_error' };
    }
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      const index = next++;
      if (options.rate !== undefined) {
        const due = started + (index * 1000) / options.rate;
        if (due >= endsAt) return;
        if (due > now()) await sleep(due - now());
      } else if (now() >= endsAt) {
        return;
      }
      samples.push(await one());
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
  return { samples, elapsedMs: now() - started };
}
