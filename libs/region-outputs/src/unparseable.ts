/** Model text that does not follow the expected format: an expected outcome, so a value, not an exception. */
export interface Unparseable {
  kind: 'unparseable';
  /** What is wrong, for logs and API errors: names the offending row, label or value. */
  reason: string;
}

export function unparseable(reason: string): Unparseable {
  return { kind: 'unparseable', reason };
}

/** `text` in double quotes for a reason, cut to `max` characters: model text can be arbitrarily long. */
export function quoted(text: string, max = 40): string {
  return `"${text.length > max ? `${text.slice(0, max)}…` : text}"`;
}
