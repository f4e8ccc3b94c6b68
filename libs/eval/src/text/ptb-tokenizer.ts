import { americanize } from './americanize';

/*
 * A re-implementation of what pycocoevalcap runs on every caption: Stanford CoreNLP 3.4.1's PTBTokenizer
 * (`-preserveLines -lowerCase`, default PTB3 options) followed by the toolkit's punctuation filter. The lexer
 * is a longest-match scanner like JFlex: every rule is tried at the current position, the longest match
 * (trailing context included) wins, ties go to the earlier rule. It covers the rules that caption text
 * meets; see the package README for what is not covered.
 */

/** Tokens the toolkit drops after tokenizing. Brackets become -LRB-/-RRB- and are lowercased before this
 * filter runs, so "-lrb-"/"-rrb-" are *not* dropped: a quirk of the reference kept on purpose. */
export const COCO_PUNCTUATION: ReadonlySet<string> = new Set([
  "''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!', ',', ':', '-', '--', '...', ';',
]);

/** Options of the PTB tokenizer; the defaults are those of the toolkit's CoreNLP 3.4.1 call. */
export interface PtbTokenizerOptions {
  /** Rewrite British spellings (centre → center, grey → gray), CoreNLP's historical default. Default true. */
  americanize?: boolean;
  /** Lowercase every token (`-lowerCase`). Default true. */
  lowerCase?: boolean;
}

// JFlex's %caseless applies to literal strings, not to character classes: literal words go through ci().
function ci(literal: string): string {
  return literal.replace(/[A-Za-z]/g, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`);
}
// JavaScript alternation takes the first alternative that fits, JFlex the longest: longer words go first.
function ciList(words: string): string {
  return words
    .split('|')
    .sort((a, b) => b.length - a.length)
    .map((w) => ci(w).replace(/\\\\/g, '\\'))
    .join('|');
}

const LETTER = '\\p{L}';
const DIGIT = '\\p{Nd}';
const SPLET = `&[aeiouAEIOU](?:${ci('acute')}|${ci('grave')}|${ci('uml')});`;
const WORD = `(?:[${LETTER}\\p{M}\\u00AD]|${SPLET})+`;
const APOS = `(?:['\\u0092\\u2019]|${ci('&apos;')})`;
const APOSETCETERA = `(?:${APOS}|[\\u0091\\u2018\\u201B])`;
const REDAUX = `${APOS}(?:[msdMSD]|${ci('re')}|${ci('ve')}|${ci('ll')})`;
const SWORD = '[A-Za-z\\u00AD]*[A-MO-Za-mo-z]\\u00AD*';
const SREDAUX = `${ci('n')}${APOSETCETERA}${ci('t')}`;
const SPACE = '[ \\t\\u00A0\\u2000-\\u200A\\u3000]';
const NEWLINE = '(?:\\r|\\r?\\n|\\u2028|\\u2029|\\u000B|\\u000C|\\u0085)';
const SPACENL = `(?:${SPACE}|${NEWLINE})`;
const SGML = '<\\/?[A-Za-z!?][^>\\r\\n]*>';
const SENTEND = `${SPACENL}(?:${SPACENL}|[A-Z]|${SGML})`;
const NUM = `(?:${DIGIT}*(?:[.:,\\u00AD\\u066B\\u066C]${DIGIT}+)+|${DIGIT}+)`;
const NUMBER = `[\\-+]?${NUM}`;
const DATE = `${DIGIT}{1,2}[\\-\\/]${DIGIT}{1,2}[\\-\\/]${DIGIT}{2,4}`;
const FRAC = `(?:${DIGIT}{1,4}[- \\u00A0])?${DIGIT}{1,4}(?:\\\\?\\/|\\u2044)${DIGIT}{1,4}`;
const HYPHEN = '[-_\\u058A\\u2010\\u2011]';
const LD = `[${LETTER}${DIGIT}]`;
const THING_PART = `(?:[dDoOlL]${APOSETCETERA}${LD})?${LD}+`;
const THING = `${THING_PART}(?:${HYPHEN}${THING_PART})*`;
const THINGA = `[A-Z]+(?:(?:[+&]|${ci('&amp;')})[A-Z]+)+`;
const THING3 = '[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\\\?\\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}';
const ACRO = `[A-Za-z](?:\\.[A-Za-z])+|(?:${ciList('Canada|Sino|Korean|EU|Japan|non')})-${ci('U')}\\.${ci('S')}|${ci('U')}\\.${ci('S')}\\.-(?:${ci('U')}\\.${ci('K')}|${ci('U')}\\.${ci('S')}\\.${ci('S')}\\.${ci('R')})`;
const HTHING = `[A-Za-z0-9][A-Za-z0-9.,\\u00AD]*(?:-(?:[A-Za-z0-9\\u00AD]+|(?:${ACRO})\\.))+`;
const APOWORD = [
  `${APOS}${ci('n')}${APOS}?`,
  `[lLdDjJ]${APOS}`,
  `${ci('Dunkin')}${APOS}`,
  `${ci('somethin')}${APOS}`,
  `${ci('ol')}${APOS}`,
  `${APOS}${ci('em')}`,
  `[A-HJ-XZn]${APOSETCETERA}[${LETTER}]{2}[${LETTER}]*`,
  `${APOS}[2-9]0${ci('s')}`,
  `${APOS}${ci('til')}${ci('l')}?`,
  `[${LETTER}][${LETTER}]*[aeiouyAEIOUY]${APOSETCETERA}[aeiouA-Z][${LETTER}]*`,
  `${APOS}${ci('cause')}`,
  `${ci("cont'd")}\\.?`,
  ...["'twas", "nor'easter", "c'mon", "e'er", "s'mores", "ev'ry", "li'l", "nat'l"].map(ci),
].join('|');
const ABMONTH = 'Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec';
const ABDAYS = 'Mon|Tue|Tues|Wed|Thu|Thurs|Fri';
const ABSTATE_CI = 'Ala|Ariz|Calif|Colo|Conn|Dak|Del|Fla|Ga|Ind|Kans|Kan|Ky|La|Md|Mich|Minn|Mo|Mont|Neb|Nev|Okla|Pa|Penn|Tenn|Tex|Va|Vt|Wisc|Wis|Wyo';
const ABSTATE_CASED = `A${ci('rk')}|I${ci('ll')}|M${ci('ass')}|M${ci('iss')}|O${ci('re')}|W${ci('ash')}`;
const ABCOMP = 'Inc|Cos|Co|Corp|Pptys|Ptys|Ppty|Pty|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys';
const ABNUM = 'Nos|No|Prop|Ph|tel|est|ext|sq|ft';
const ABPTIT = `Jr|Sr|Bros|${ci('Ed')}\\.${ci('D')}|${ci('Ph')}\\.${ci('D')}|Blvd|Rd|Esq`;
const ABBREV1 = `(?:${ciList(`${ABMONTH}|${ABDAYS}|${ABSTATE_CI}|${ABCOMP}|${ABNUM}|etc|al|seq`)}|${ABSTATE_CASED}|${ABPTIT.split('|')
  .map((w) => (w.includes('[') ? w : ci(w)))
  .join('|')})\\.`;
const ABTITLE = 'Mr|Mrs|Ms|Drs|Dr|Profs|Prof|Sens|Sen|Reps|Rep|Attys|Atty|Lt|Col|Gen|Messrs|Govs|Gov|Adm|Rev|Maj|Sgt|Cpl|Pvt|Mt|Capt|Ste|St|Ave|Pres|Lieut|Hon|Brig|Comdr|Cmdr|Pfc|Spc|Supts|Supt|Det';
const ABBREV4 = `${ACRO}|${ci('a')}\\.${ci('k')}\\.${ci('a')}|${ciList(`${ABTITLE}|vs|Alex|Wm|Jos|Cie|cf|TREAS|Invt|Elec|Natl|Mfg|Mtg`)}|M${ci('iss')}|[A-Za-z]`;
const ACRONYM_FOLLOWERS =
  'About|According|Additionally|After|An|A|As|At|But|Earlier|He|Her|Here|However|If|In|It|Last|Many|More|Mr\\.|Ms\\.|Now|Once|One|Other|Our|She|Since|So|Some|Such|That|The|Then|There|These|They|This|We|When|While|What|Yet|You';
const PHONE = `(?:\\([0-9]{2,3}\\)[ \\u00A0]?|(?:\\+\\+?)?(?:[0-9]{2,4}[\\- \\u00A0])?[0-9]{2,4}[\\- \\u00A0])[0-9]{3,4}[\\- \\u00A0]?[0-9]{3,5}|(?:(?:\\+\\+?)?[0-9]{2,4}\\.)?[0-9]{2,4}\\.[0-9]{3,4}\\.[0-9]{3,5}`;
const INSENTP = '[,;:\\u3001]';
const QUOTES = `''|${APOS}|[\`\\u2018\\u2019\\u201A\\u201B\\u201C\\u201D\\u0091\\u0092\\u0093\\u0094\\u201E\\u201F\\u2039\\u203A\\u00AB\\u00BB]{1,2}`;
const DBLQUOT = `"|${ci('&quot;')}`;
const MISCSYMBOL =
  '[+%&~\\^|\\\\\\u00A6\\u00A7\\u00A8\\u00A9\\u00AC\\u00AE\\u00AF\\u00B0-\\u00BA\\u00D7\\u00F7\\u0387\\u2016\\u2017\\u2020-\\u2023\\u2030-\\u2038\\u203B\\u203E-\\u2042\\u2044\\u207A-\\u207F\\u208A-\\u208E\\u2100-\\u214F\\u2190-\\u21FF\\u2200-\\u2BFF\\u3012\\u30FB\\uFF01-\\uFF0F\\uFF1A-\\uFF20\\uFF3B-\\uFF40\\uFF5B-\\uFF65]';
const URL = 'https?:\\/\\/[^ \\t\\n\\f\\r"<>|()]+[^ \\t\\n\\f\\r"<>|.!?(){},-]';

type Kind = 'word' | 'plain' | 'slash' | 'asterisk' | 'latexLeft' | 'latexRight' | 'skip' | 'newline';

interface Rule {
  /** Token part, then optional trailing context (counted for longest match, not consumed). */
  re: RegExp;
  kind: Kind;
  /** Fixed replacement text. */
  text?: string;
  /** Transform of the matched token text. */
  map?: (s: string) => string;
  /** Characters pushed back after the token (JFlex yypushback), e.g. the reduplicated period. */
  pushback?: number;
}

function rule(token: string, kind: Kind, extra: Omit<Rule, 're' | 'kind'> = {}, context = ''): Rule {
  return { re: new RegExp(`(${token})(${context})`, 'uy'), kind, ...extra };
}

const HYPHEN_TO_PTB = (s: string) => (s.length >= 3 && s.length <= 4 ? '--' : s);
const CURRENCY = (s: string) => s.replace(/\u00A2/g, 'cents').replace(/\u00A3/g, '#').replace(/[\u0080\u00A4\u20A0\u20AC]/g, '$');
const FRACTIONS = (s: string) =>
  s.replace(/\u00BC/g, '1\\/4').replace(/\u00BD/g, '1\\/2').replace(/\u00BE/g, '3\\/4').replace(/\u2153/g, '1\\/3');
const SOFT_HYPHENS = (s: string) => s.replace(/\u00AD/g, '') || '-';
const AMP = (s: string) => s.replace(/&amp;/gi, '&');

// Order matters only to break ties between matches of equal length (earlier wins), as in PTBLexer.flex.
const RULES: Rule[] = [
  rule(ci('can'), 'plain', {}, ci('not')),
  rule(SGML, 'plain', { map: (s) => s.replace(/ /g, '\u00A0') }),
  rule(`${ci('&MD;')}|${ci('&mdash;')}|${ci('&ndash;')}|[\\u0096\\u0097\\u2013\\u2014\\u2015]`, 'plain', { text: '--' }),
  rule(ci('&amp;'), 'plain', { text: '&' }),
  rule(`&(?:${ciList('HT|TL|UR|LR|QC|QL|QR|odq|cdq')}|#[0-9]+);`, 'plain'),
  rule(WORD, 'word', {}, REDAUX),
  rule(SWORD, 'plain', { map: SOFT_HYPHENS }, SREDAUX),
  rule(WORD, 'word'),
  rule(APOWORD, 'plain'),
  rule(`y${APOS}`, 'plain', {}, `[${LETTER}]`),
  rule(URL, 'slash'),
  rule(REDAUX, 'latexRight', {}, '[^A-Za-z]'),
  rule(SREDAUX, 'latexRight'),
  rule(DATE, 'slash'),
  rule(NUMBER, 'plain', { map: SOFT_HYPHENS }),
  rule(FRAC, 'slash', { map: (s) => s.replace(/ /g, '\u00A0') }),
  rule('[\\u00BC\\u00BD\\u00BE\\u2153-\\u215E]', 'plain', { map: FRACTIONS }),
  rule(`-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|C\\.D\\.s|${ci('pro-')}|${ci('anti-')}|S(?:&|&amp;)P-500|S(?:&|&amp;)Ls|${ci('Cap')}${APOS}${ci('n')}|${ci('c')}${APOS}${ci('est')}`, 'plain', { map: AMP }),
  rule(THING3, 'slash'),
  rule('[A-Z]*\\$|#', 'plain'),
  rule('[\\u00A2\\u00A3\\u00A4\\u00A5\\u0080\\u20A0\\u20AC\\u060B\\u0E3F\\u20A4\\uFFE0\\uFFE1\\uFFE5\\uFFE6]', 'plain', { map: CURRENCY }),
  rule(`(?:${ACRO})\\.`, 'plain', { pushback: 1 }, `${SPACE}+(?:${ACRONYM_FOLLOWERS})${SPACE}`),
  rule(ABBREV1, 'plain', { pushback: 1 }, SENTEND),
  rule(ABBREV1, 'plain'),
  rule(`(?:${ABBREV4})\\.`, 'plain'),
  rule(ABBREV4, 'plain', {}, SPACE),
  rule(ACRO, 'plain', {}, SPACENL),
  rule(`${APOS}[0-9][0-9]`, 'plain', {}, SPACENL),
  rule(`${WORD}\\.`, 'plain', { map: SOFT_HYPHENS }, INSENTP),
  rule(PHONE, 'plain', { map: (s) => s.replace(/ /g, '\u00A0').replace(/\(/g, '-LRB-').replace(/\)/g, '-RRB-') }),
  rule(DBLQUOT, 'latexLeft', {}, '[A-Za-z0-9$]'),
  rule(DBLQUOT, 'latexRight'),
  rule('\\u007f', 'skip'),
  rule(`[<\\[]|${ci('&lt;')}`, 'plain', { text: '-LRB-' }),
  rule(`[>\\]]|${ci('&gt;')}`, 'plain', { text: '-RRB-' }),
  rule('\\{', 'plain', { text: '-LCB-' }),
  rule('\\}', 'plain', { text: '-RCB-' }),
  rule('\\(', 'plain', { text: '-LRB-' }),
  rule('\\)', 'plain', { text: '-RRB-' }),
  rule('-+', 'plain', { map: HYPHEN_TO_PTB }),
  rule('\\.{3,5}|(?:\\.[ \\u00A0]){2,4}\\.|[\\u0085\\u2026]', 'plain', { text: '...' }),
  rule('@+|#+|_+', 'plain'),
  rule('\\*+|(?:\\\\\\*){1,3}', 'asterisk'),
  rule(INSENTP, 'plain'),
  rule('[?!]+', 'plain'),
  rule('[.\\u00A1\\u00BF\\u037E\\u0589\\u061F\\u06D4\\u0700-\\u0702\\u07FA\\u3002]', 'plain'),
  rule('=', 'plain'),
  rule('\\/', 'slash'),
  rule(`${HTHING}\\.`, 'plain', { map: SOFT_HYPHENS }, INSENTP),
  rule(HTHING, 'plain', { map: SOFT_HYPHENS }),
  rule(`${THING}\\.`, 'plain', {}, INSENTP),
  rule(THING, 'plain'),
  rule(`${THINGA}\\.`, 'plain', { map: AMP }, INSENTP),
  rule(THINGA, 'plain', { map: AMP }),
  rule("'", 'latexLeft', {}, '[A-Za-z][^ \\t\\n\\r\\u00A0]'),
  rule(REDAUX, 'latexRight'),
  rule(QUOTES, 'latexRight'),
  rule('<<|>>', 'plain'),
  rule(MISCSYMBOL, 'plain'),
  rule(`\\u0000|${SPACE}+|[\\u200B\\u200E\\u200F\\uFEFF]|${ci('&nbsp;')}`, 'skip'),
  rule(NEWLINE, 'newline'),
];

function latexQuotes(s: string, probablyLeft: boolean): string {
  let out = probablyLeft ? s.replace(/&apos;|'/g, '`').replace(/"|&quot;/g, '``') : s.replace(/&apos;|'/g, "'").replace(/"|&quot;/g, "''");
  out = out.replace(/[\u0091\u2018\u201B\u2039]/g, '`').replace(/[\u0092\u2019\u203A]/g, "'");
  return out.replace(/[\u0093\u201C\u00AB]/g, '``').replace(/[\u0094\u201D\u00BB]/g, "''");
}

/** Escapes `c` with a backslash unless it already has one (PTB3's \/ and \*). */
function delimit(s: string, c: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === c && (i === 0 || s[i - 1] !== '\\')) out += '\\';
    out += s[i];
  }
  return out;
}

/** PTB tokens of one line of text (no lowercasing, no filtering). */
export function ptbTokens(text: string, options: PtbTokenizerOptions = {}): string[] {
  const doAmericanize = options.americanize ?? true;
  // Each caption is one line of the toolkit's input file, so it is followed by a newline.
  const input = `${text.replace(/\n/g, ' ')}\n`;
  const tokens: string[] = [];
  let pos = 0;
  while (pos < input.length) {
    let best: { rule: Rule; token: string; total: number } | undefined;
    for (const r of RULES) {
      r.re.lastIndex = pos;
      const m = r.re.exec(input);
      if (!m || m[0].length === 0) continue;
      if (!best || m[0].length > best.total) best = { rule: r, token: m[1], total: m[0].length };
    }
    if (!best) {
      // Untokenizable character: PTBLexer's default (firstDelete) drops it.
      pos += String.fromCodePoint(input.codePointAt(pos) ?? 0).length;
      continue;
    }
    const { rule: r, token } = best;
    pos += token.length - (r.pushback ?? 0);
    switch (r.kind) {
      case 'skip':
      case 'newline':
        break;
      case 'word': {
        const plain = SOFT_HYPHENS(token);
        tokens.push(doAmericanize ? americanize(plain) : plain);
        break;
      }
      case 'slash':
        tokens.push(delimit(r.map ? r.map(token) : token, '/'));
        break;
      case 'asterisk':
        tokens.push(delimit(token, '*'));
        break;
      case 'latexLeft':
        tokens.push(latexQuotes(token, true));
        break;
      case 'latexRight':
        tokens.push(latexQuotes(token, false));
        break;
      default:
        tokens.push(r.text ?? (r.map ? r.map(token) : token));
    }
  }
  return tokens;
}

/**
 * The toolkit's caption tokenization: PTB tokens, lowercased, minus its punctuation list, joined by spaces.
 * Candidates and references must both go through it.
 */
export function ptbTokenize(caption: string, options: PtbTokenizerOptions = {}): string {
  const lower = options.lowerCase ?? true;
  return ptbTokens(caption, options)
    .map((t) => (lower ? t.toLowerCase() : t))
    .filter((t) => !COCO_PUNCTUATION.has(t))
    .join(' ');
}
