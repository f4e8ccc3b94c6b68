import { Option, type Command } from 'commander';

/** Where the client commands find the gateway when neither `--url` nor RSMOE_URL says otherwise. */
export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:8080';

/**
 * What the environment says about the gateway (main.ts reads RSMOE_URL and RSMOE_API_KEY once): the
 * defaults of `--url` and `--api-key`; a flag wins over them.
 */
export interface GatewayDefaults {
  /** RSMOE_URL: the gateway's base URL. Default DEFAULT_GATEWAY_URL. */
  url?: string;
  /** RSMOE_API_KEY: the key sent to a gateway with AUTH_MODE=required. Default: none sent. */
  apiKey?: string;
}

/** The gateway a client talks to and the key it sends, as the flags of a client command resolve them. */
export interface GatewayAccess {
  /** Base URL, e.g. http://127.0.0.1:8080 (no trailing /v1). */
  url: string;
  /** Sent as `Authorization: Bearer <key>`; absent: no key sent. */
  apiKey?: string;
}

/** A request that did not succeed: HTTP status (0 for network errors and timeouts) and the gateway's error. */
export class GatewayRequestError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly errorCode: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'GatewayRequestError';
  }
}

/** Adds `--url <url>` and `--api-key <key>` to a client command, their defaults from the environment. */
export function addGatewayOptions(command: Command, defaults: GatewayDefaults = {}, urlHelp = 'gateway base URL'): Command {
  return command
    .addOption(
      new Option('--url <url>', `${urlHelp} (else RSMOE_URL, else ${DEFAULT_GATEWAY_URL})`).default(
        defaults.url ?? DEFAULT_GATEWAY_URL,
        defaults.url !== undefined ? `RSMOE_URL: ${defaults.url}` : undefined,
      ),
    )
    .addOption(
      // The default's description hides the key itself from --help.
      new Option('--api-key <key>', 'API key sent as `Authorization: Bearer` to a gateway that requires keys (else RSMOE_API_KEY)').default(
        defaults.apiKey,
        defaults.apiKey !== undefined ? 'RSMOE_API_KEY' : undefined,
      ),
    );
}

/** The gateway and key of a command's flags, nothing else (commander sets `apiKey` to undefined when no key was given). */
export function accessOf(flags: GatewayAccess): GatewayAccess {
  return { url: flags.url, ...(flags.apiKey !== undefined ? { apiKey: flags.apiKey } : {}) };
}

/** The headers every gateway request carries: the API key, when there is one. */
export function gatewayHeaders(access: Pick<GatewayAccess, 'apiKey'>): Record<string, string> {
  return access.apiKey === undefined ? {} : { authorization: `Bearer ${access.apiKey}` };
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connect timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_SOCKET: 'connection closed',
};

/**
 * The error of a fetch that got no answer from `base`: a timeout after `timeoutMs`, or a network error that
 * names the URL, the reason (fetch itself says only "fetch failed") and how to get a gateway.
 */
export function unansweredError(base: string, error: unknown, timeoutMs: number): GatewayRequestError {
  const name = (error as { name?: unknown }).name;
  if (name === 'TimeoutError') return new GatewayRequestError(0, 'timeout', `no answer from the gateway at ${base} within ${timeoutMs} ms`);
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const reason = code !== undefined ? (NETWORK_REASONS[code] ?? code) : typeof cause?.message === 'string' ? cause.message : (error as Error).message;
  return new GatewayRequestError(0, 'network_error', `no gateway answered at ${base} (${reason}): start one with \`npm start\`, or point --url / RSMOE_URL at yours`);
}

/** What to do about a 401: give a key, or a valid one. */
export function unauthenticatedHint(keySent: boolean): string {
  return keySent
    ? 'the gateway refused the API key given (--api-key or RSMOE_API_KEY): check it, or make one with `rsmoe keys create`'
    : 'this gateway requires an API key: pass --api-key <key> or set RSMOE_API_KEY (`rsmoe keys create` makes one)';
}

/** A refusal's message, with what to do about it where the CLI knows (a 401: the API key). */
export function refusalMessage(httpStatus: number, message: string, keySent: boolean): string {
  return httpStatus === 401 ? `${message}; ${unauthenticatedHint(keySent)}` : message;
}

/**
 * Asks the gateway for its experts (`GET /v1/experts`: needs a key where keys are required, costs no image)
 * so that a command about to send many requests fails at once, and readably, when the gateway cannot be
 * reached or wants a key. Any other answer passes: the requests themselves report it.
 */
export async function checkGatewayAccess(access: GatewayAccess, timeoutMs = 10_000): Promise<void> {
  const base = access.url.replace(/\/+$/, '');
  let response: Response;
  try {
    response = await fetch(`${base}/v1/experts`, { headers: gatewayHeaders(access), signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw unansweredError(base, error, timeoutMs);
  }
  const body = await response.text();
  if (response.status !== 401) return;
  let error: { code?: unknown; message?: unknown } = {};
  try {
    error = ((JSON.parse(body) as { error?: typeof error }).error ?? {}) as typeof error;
  } catch {
    // not JSON: the status says enough
  }
  const message = typeof error.message === 'string' ? error.message : 'HTTP 401';
  throw new GatewayRequestError(401, typeof error.code === 'string' ? error.code : 'http_401', refusalMessage(401, message, access.apiKey !== undefined));
}
