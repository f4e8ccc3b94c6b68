/** One `rsmoe load` run, checked: what to send, how hard, for how long. */
export interface LoadOptions {
  /** Gateway base URL (no /v1). */
  url: string;
  task: 'caption' | 'vqa';
  /** Requests in flight at once (1 to MAX_CONCURRENCY). */
  concurrency: number;
  /** How long to send, in seconds (up to MAX_DURATION_S). */
  durationS: number;
  /** Requests started per second (open loop, at most `concurrency` in flight); absent: closed loop, as fast as answers come. */
  rate?: number;
  /** The question of every `vqa` request. */
  question: string;
  /** Client-side limit per request, in ms; a request past it counts as `client_timeout`. */
  timeoutMs: number;
}

/** Caps that keep the load script a test tool, not a flood. */
export const LOAD_LIMITS = Object.freeze({ maxConcurrency: 256, maxDurationS: 600, maxRate: 1_000, maxTimeoutMs: 300_000 });

/** A flag the load script refuses; the message names the flag and the allowed range. */
export class LoadOptionsError extends Error {
  override readonly name = 'LoadOptionsError';
  readonly code = 'invalid_arguments';
}

/** The flags as commander hands them over (strings, as typed). */
export interface LoadFlags {
  url: string;
  task: string;
  concurrency: string;
  duration: string;
  rate?: string;
  question: string;
  timeoutMs: string;
  allowRemote?: boolean;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)$/i;

/** True for a host that is this machine: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.test(hostname);
}

/** Checks every flag and reports all problems at once; a non-loopback URL needs `allowRemote`. */
export function parseLoadOptions(flags: LoadFlags): LoadOptions {
  const problems: string[] = [];
  const number = (flag: string, text: string | undefined, min: number, max: number, integer: boolean): number => {
    const value = Number(text);
    if (text === undefined || text.trim() === '' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      problems.push(`${flag} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}] (got ${JSON.stringify(text ?? null)})`);
    }
    return value;
  };
  const concurrency = number('--concurrency', flags.concurrency, 1, LOAD_LIMITS.maxConcurrency, true);
  const durationS = number('--duration', flags.duration, 1, LOAD_LIMITS.maxDurationS, false);
  const rate = flags.rate === undefined ? undefined : number('--rate', flags.rate, 0.1, LOAD_LIMITS.maxRate, false);
  const timeoutMs = number('--timeout-ms', flags.timeoutMs, 100, LOAD_LIMITS.maxTimeoutMs, true);
  if (flags.task !== 'caption' && flags.task !== 'vqa') problems.push(`--task must be caption or vqa (got ${JSON.stringify(flags.task)})`);
  if (flags.task === 'vqa' && flags.question.trim() === '') problems.push('--question must not be empty for --task vqa');
  let url = flags.url;
  try {
    const parsed = new URL(flags.url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') problems.push(`--url must be http:// or https:// (got ${parsed.protocol})`);
    else if (!isLoopbackHost(parsed.hostname) && !flags.allowRemote) {
      problems.push(`--url ${parsed.host} is not this machine: the load script sends only to loopback unless --allow-remote is given`);
    }
    url = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  } catch {
    problems.push(`--url is not a URL (got ${JSON.stringify(flags.url)})`);
  }
  if (problems.length > 0) throw new LoadOptionsError(problems.join('; '));
  return { url, task: flags.task as LoadOptions['task'], concurrency, durationS, rate, question: flags.question, timeoutMs };
}
