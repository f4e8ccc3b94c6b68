// Meteor 1.5's English normalizer (`-norm`: tokenize, keep punctuation), itself based on the Moses tokenizer.
// Java's \p{Digit} and \p{Lower} are ASCII-only there, hence [0-9] and [a-z]. Regex replacements are global and non-overlapping, like Java's replaceAll, which matters for "a-b-c".

const ALPHA = 'A-Za-zŠŽšžŸÀ-ÖØ-öø-ž\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f';
const ALNUM = `0-9${ALPHA}`;

const SEP_OTHER = new RegExp(`([^${ALNUM}\\s.'\`,\\-‘’])`, 'g');
const MULTI_DOT = /\.([.]+)/g;
const MULTI_DOT2 = /DOTMULTI\.([^.])/g;
const COMMA = /([^0-9])[,]([^0-9])/g;
const COMMA2 = /([0-9])[,]([^0-9])/g;
const COMMA3 = /([^0-9])[,]([0-9])/g;
const QUOTE_NORM = /([`‘’])/g;
const QUOTE_NORM2 = /([“”]|'')/g;
const RM_DASH = new RegExp(`([${ALNUM}.])[-]([${ALNUM}])`, 'g');
const CONT_EN = new RegExp(`([^${ALPHA}])[']([^${ALPHA}])`, 'g');
const CONT_EN2 = new RegExp(`([^${ALPHA}0-9])[']([${ALPHA}])`, 'g');
const CONT_EN3 = new RegExp(`([${ALPHA}])[']([^${ALPHA}])`, 'g');
const CONT_EN4 = new RegExp(`([${ALPHA}])[']([${ALPHA}])`, 'g');
const CONT_EN5 = /([0-9])[']([s])/g;
const NBP_ALPHA = new RegExp(`[${ALPHA}]`);
const WHITE = /[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+/g;
const JAVA_TOKEN_SPLIT = /[ \t\n\r\f]+/;

// Moses' English nonbreaking prefixes (NUMERIC_ONLY ones are nonbreaking only before a number).
const NBP_ANY = new Set<string>([
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split(''),
  ...'Adj Adm Adv Asst Bart Bldg Brig Bros Capt Cmdr Col Comdr Con Corp Cpl DR Dr Drs Ens Gen Gov Hon Hr Hosp Insp Lt MM MR MRS MS Maj Messrs Mlle Mme Mr Mrs Ms Msgr Op Ord Pfc Ph Prof Pvt Rep Reps Res Rev Rt Sen Sens Sfc Sgt Sr St Supt Surg v vs i.e rev e.g Jan Feb Mar Apr Jun Jul Aug Sep Oct Nov Dec'.split(' '),
]);
const NBP_NUMERIC_ONLY = new Set<string>(['No', 'Nos', 'Art', 'Nr', 'pp']);

/** Meteor's `normalizeLine(line, en, keepPunctuation = true)`; lowercasing is the caller's step. */
export function meteorNormalize(line: string): string {
  let w = ` ${line} `;
  w = w.replace(SEP_OTHER, ' $1 ');
  w = w.replace(MULTI_DOT, ' DOTMULTI$1');
  while (w.includes('DOTMULTI.')) {
    w = w.replace(MULTI_DOT2, 'DOTDOTMULTI $1');
    w = w.split('DOTMULTI.').join('DOTDOTMULTI');
  }
  w = w.replace(COMMA, '$1 , $2').replace(COMMA2, '$1 , $2').replace(COMMA3, '$1 , $2');
  w = w.replace(QUOTE_NORM, "'").replace(QUOTE_NORM2, ' " ');
  w = w.split('–').join('-').split('--').join('-');
  w = w.replace(RM_DASH, '$1 $2');
  w = w.replace(CONT_EN, "$1 ' $2").replace(CONT_EN2, "$1 ' $2").replace(CONT_EN3, "$1 ' $2");
  w = w.replace(CONT_EN4, "$1 '$2").replace(CONT_EN5, "$1 '$2");

  const words = w.split(JAVA_TOKEN_SPLIT).filter((x) => x.length > 0);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (word.length > 1 && word.endsWith('.')) {
      const pre = word.slice(0, -1);
      const next = words[i + 1];
      if (pre.includes('.') && NBP_ALPHA.test(pre)) {
        out.push(word.split('.').join(''));
      } else if (NBP_ANY.has(pre) || (next !== undefined && /^[a-z]/.test(next))) {
        out.push(word);
      } else if (NBP_NUMERIC_ONLY.has(pre) && next !== undefined && /^[0-9]+/.test(next)) {
        out.push(word);
      } else {
        out.push(`${pre} .`);
      }
    } else {
      out.push(word);
    }
  }
  w = `${out.join(' ')} `;
  while (w.includes('DOTDOTMULTI')) w = w.split('DOTDOTMULTI').join('DOTMULTI.');
  w = w.split('DOTMULTI').join('.');
  return w.replace(WHITE, ' ').trim();
}
