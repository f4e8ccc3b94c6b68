// Python's str.split() separators (the toolkit splits with it), not JavaScript's \s: \x1c-\x1f and \x85 count,
// U+FEFF does not.
const PY_WHITESPACE = /[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Splits like Python's `str.split()` with no argument: runs of whitespace, no empty tokens. */
export function splitWords(text: string): string[] {
  return text.split(PY_WHITESPACE).filter((word) => word.length > 0);
}
