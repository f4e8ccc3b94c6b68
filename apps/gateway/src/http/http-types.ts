import type { IncomingMessage, ServerResponse } from 'node:http';

/** The parts of an Express request the gateway uses (Express's own types are not installed). */
export interface HttpRequest extends IncomingMessage {
  body?: unknown;
  params?: Record<string, string>;
  /** Set by Express once a route matched: its path template (e.g. `/v1/requests/:id`). */
  route?: { path?: unknown };
  baseUrl?: string;
}

/** The parts of an Express response the gateway uses. */
export interface HttpResponse extends ServerResponse {
  status(code: number): this;
  json(body: unknown): this;
}
