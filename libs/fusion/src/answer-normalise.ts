const YES = new Set(['yes', 'yeah', 'yep', 'yup', 'true', 'correct', 'affirmative', 'y']);
const NO = new Set(['no', 'nope', 'false', 'incorrect', 'negative', 'n']);

const UNITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const NUMBER_WORDS = new Map<string, number>([...UNITS.map((w, i) => [w, i] as const), ...TENS.flatMap((w, i) => (w ? [[w, i * 10] as const] : [])), ['none', 0], ['hundred', 100]]);

const ARTICLES = new Set(['a', 'an', 'the']);

/** Replaces number words with digits: `three` → `3`, `twenty one` / `twenty-one` → `21`, `none` → `0`. */
function numbersToDigits(words: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    const hyphenated = /^([a-z]+)-([a-z]+)$/.exec(word);
    if (hyphenated && TENS.includes(hyphenated[1]) && UNITS.indexOf(hyphenated[2]) > 0 && UNITS.indexOf(hyphenated[2]) < 10) {
      out.push(String(NUMBER_WORDS.get(hyphenated[1])! + UNITS.indexOf(hyphenated[2])));
      continue;
    }
    const value = NUMBER_WORDS.get(word);
    if (value === undefined) {
      out.push(word);
      continue;
    }
    const next = UNITS.indexOf(words[i + 1] ?? '');
    if (TENS.includes(word) && next > 0 && next < 10) {
      out.push(String(value + next));
      i++;
    } else {
      out.push(String(value));
    }
  }
  return out;
}

/**
 * The comparable form of an answer (VQA-style): lower case; surrounding quotes and final punctuation
 * removed; an answer that starts with yes/no or a synonym (`yeah`, `true`, `nope`, ...) becomes `yes` / `no`;
 * number words become digits; articles dropped; single spaces.
 * `"Yes, there is a road."` → `yes`; `"Three cars"` → `3 cars`; `"The river."` → `river`.
 */
export function normaliseAnswer(text: string): string {
  const cleaned = text
    .toLowerCase()
    .trim()
    .replace(/^["'“”‘’`]+|["'“”‘’`]+$/g, '')
    .replace(/[\s.!?,;:]+$/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  const words = cleaned.split(' ').filter(Boolean);
  if (words.length === 0) return '';
  const first = words[0].replace(/[,;:.!]+$/, '');
  if (YES.has(first)) return 'yes';
  if (NO.has(first)) return 'no';
  return numbersToDigits(words.filter((w) => !ARTICLES.has(w))).join(' ');
}
