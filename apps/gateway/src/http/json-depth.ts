import { ERROR_CODES, GatewayError } from '../errors/gateway-error';

/** Deepest nesting of arrays and objects a JSON body may have; the API's own bodies need 3. */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * Refuses (400 invalid_json) a raw JSON body nested deeper than `maxDepth`, by one pass over its bytes
 * before it is parsed: JSON.parse of a megabyte of `[[[[` holds the event loop for a third of a second
 * here, and nothing the API accepts is nested more than a few levels. Body-parser's `verify` hook.
 */
export function assertJsonDepth(body: Buffer, maxDepth = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      if (++depth > maxDepth) throw new GatewayError(400, ERROR_CODES.invalidJson, `the JSON body is nested deeper than ${maxDepth} levels`);
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
      depth--;
    }
  }
}
