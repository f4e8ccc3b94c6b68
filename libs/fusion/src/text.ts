/** A sentence of a partial: its body without the final punctuation, and that punctuation (`.`, `!` or `?`). */
export interface Sentence {
  body: string;
  terminator: '.' | '!' | '?';
}

/** A clause of a sentence and the separator written before it (`''` for the first). */
export interface Clause {
  text: string;
  separator: string;
}

/** Single spaces, no space before `, ; : . ! ?`, one space after `,` and `;`. */
export function tidySpacing(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/\s+([,;:.!?])/g, '$1')
    .replace(/([,;])(?=\S)/g, '$1 ')
    .trim();
}

/**
 * Splits text into sentences at `.`, `!` or `?` followed by a space or the end (so `2.5` stays whole).
 * Text without a terminator is one sentence ending in `.`. Blank sentences are dropped.
 */
export function splitSentences(text: string): Sentence[] {
  const sentences: Sentence[] = [];
  const push = (raw: string, mark: string): void => {
    const body = tidySpacing(raw).replace(/[,;:\s]+$/, '');
    if (body === '') return;
    sentences.push({ body, terminator: mark.includes('?') ? '?' : mark.includes('!') ? '!' : '.' });
  };
  const tidy = tidySpacing(text);
  let start = 0;
  for (const match of tidy.matchAll(/[.!?]+(?=\s|$)/g)) {
    push(tidy.slice(start, match.index), match[0]);
    start = match.index + match[0].length;
  }
  push(tidy.slice(start), '.');
  return sentences;
}

/** Splits a sentence body into clauses at `,`, `;`, `, and` and ` and `. */
export function splitClauses(body: string): Clause[] {
  const clauses: Clause[] = [];
  const pattern = /\s*([,;])\s*(and\s+)?|\s+and\s+/g;
  let start = 0;
  let separator = '';
  for (const match of body.matchAll(pattern)) {
    clauses.push({ text: body.slice(start, match.index).trim(), separator });
    separator = match[1] ? `${match[1]} ${match[2] ? 'and ' : ''}` : ' and ';
    start = match.index + match[0].length;
  }
  clauses.push({ text: body.slice(start).trim(), separator });
  return clauses.filter((c) => c.text !== '');
}

const ARTICLES = new Set(['a', 'an', 'the']);

/** Comparison key of a fragment: lower case, punctuation removed, articles dropped, single spaces. */
export function fragmentKey(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .split(' ')
    .filter((word) => word !== '' && !ARTICLES.has(word))
    .join(' ');
}

/** Joins kept clauses, each after the separator it had (the first one's is dropped). */
export function joinClauses(clauses: readonly Clause[]): string {
  return clauses.map((c, i) => (i === 0 ? c.text : `${c.separator}${c.text}`)).join('');
}

/** Capitalises the first letter and adds the terminator. */
export function formatSentence(body: string, terminator: Sentence['terminator'] = '.'): string {
  const text = tidySpacing(body);
  if (text === '') return '';
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}${terminator}`;
}
