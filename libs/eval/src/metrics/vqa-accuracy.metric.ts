/** One answered RSVQA-style question: a single ground-truth answer. */
export interface RsvqaItem {
  /** Question type, e.g. presence, comp, count, rural_urban, area. */
  type: string;
  answer: string;
  prediction: string;
}

/** RSVQA accuracy: per type, average accuracy (mean over types) and overall accuracy (pooled). */
export interface RsvqaAccuracy {
  perType: Record<string, { correct: number; total: number; accuracy: number }>;
  /** Mean of the per-type accuracies (fraction). */
  averageAccuracy: number;
  /** Correct answers over all questions (fraction). */
  overallAccuracy: number;
  correct: number;
  total: number;
}

/**
 * Normalisation for RSVQA exact match: lowercase, trim, collapse inner whitespace, drop a final period.
 * RSVQA answers are short closed-vocabulary strings (yes/no, a count, an area bin, rural/urban).
 */
export function normalizeRsvqaAnswer(answer: string): string {
  return answer.trim().toLowerCase().replace(/\s+/g, ' ').replace(/\.$/, '').trim();
}

/** Scores RSVQA-style predictions by exact match after `normalizeRsvqaAnswer`. */
export function rsvqaAccuracy(items: readonly RsvqaItem[]): RsvqaAccuracy {
  const perType: RsvqaAccuracy['perType'] = {};
  let correct = 0;
  for (const item of items) {
    const bucket = (perType[item.type] ??= { correct: 0, total: 0, accuracy: 0 });
    bucket.total++;
    if (normalizeRsvqaAnswer(item.answer) === normalizeRsvqaAnswer(item.prediction)) {
      bucket.correct++;
      correct++;
    }
  }
  const types = Object.values(perType);
  for (const bucket of types) bucket.accuracy = bucket.correct / bucket.total;
  return {
    perType,
    averageAccuracy: types.length === 0 ? 0 : types.reduce((a, b) => a + b.accuracy, 0) / types.length,
    overallAccuracy: items.length === 0 ? 0 : correct / items.length,
    correct,
    total: items.length,
  };
}

// The official VQA evaluation (vqaEval.py), including its quirks.
const CONTRACTIONS: Record<string, string> = {
  aint: "ain't", arent: "aren't", cant: "can't", couldve: "could've", couldnt: "couldn't", "couldn'tve": "couldn’t’ve",
  "couldnt’ve": "couldn’t’ve", didnt: "didn’t", doesnt: "doesn’t", dont: "don’t", hadnt: "hadn’t", "hadnt’ve": "hadn’t’ve",
  "hadn'tve": "hadn’t’ve", hasnt: "hasn’t", havent: "haven’t", hed: "he’d", "hed’ve": "he’d’ve", "he’dve": "he’d’ve",
  hes: "he’s", howd: "how’d", howll: "how’ll", hows: "how’s", "Id’ve": "I’d’ve", "I’dve": "I’d’ve", Im: "I’m", Ive: "I’ve",
  isnt: "isn’t", itd: "it’d", "itd’ve": "it’d’ve", "it’dve": "it’d’ve", itll: "it’ll", "let’s": "let’s", maam: "ma’am",
  mightnt: "mightn’t", "mightnt’ve": "mightn’t’ve", "mightn’tve": "mightn’t’ve", mightve: "might’ve", mustnt: "mustn’t",
  mustve: "must’ve", neednt: "needn’t", notve: "not’ve", oclock: "o’clock", oughtnt: "oughtn’t", "ow’s’at": "’ow’s’at",
  "’ows’at": "’ow’s’at", "’ow’sat": "’ow’s’at", shant: "shan’t", "shed’ve": "she’d’ve", "she’dve": "she’d’ve", "she’s": "she’s",
  shouldve: "should’ve", shouldnt: "shouldn’t", "shouldnt’ve": "shouldn’t’ve", "shouldn’tve": "shouldn’t’ve",
  "somebody’d": "somebodyd", "somebodyd’ve": "somebody’d’ve", "somebody’dve": "somebody’d’ve", somebodyll: "somebody’ll",
  somebodys: "somebody’s", someoned: "someone’d", "someoned’ve": "someone’d’ve", "someone’dve": "someone’d’ve",
  someonell: "someone’ll", someones: "someone’s", somethingd: "something’d", "somethingd’ve": "something’d’ve",
  "something’dve": "something’d’ve", somethingll: "something’ll", thats: "that’s", thered: "there’d", "thered’ve": "there’d’ve",
  "there’dve": "there’d’ve", therere: "there’re", theres: "there’s", theyd: "they’d", "theyd’ve": "they’d’ve",
  "they’dve": "they’d’ve", theyll: "they’ll", theyre: "they’re", theyve: "they’ve", twas: "’twas", wasnt: "wasn’t",
  "wed’ve": "we’d’ve", "we’dve": "we’d’ve", weve: "we've", werent: "weren’t", whatll: "what’ll", whatre: "what’re",
  whats: "what’s", whatve: "what’ve", whens: "when’s", whered: "where’d", wheres: "where's", whereve: "where’ve",
  whod: "who’d", "whod’ve": "who’d’ve", "who’dve": "who’d’ve", wholl: "who’ll", whos: "who’s", whove: "who've",
  whyll: "why’ll", whyre: "why’re", whys: "why’s", wont: "won’t", wouldve: "would’ve", wouldnt: "wouldn’t",
  "wouldnt’ve": "wouldn’t’ve", "wouldn’tve": "wouldn’t’ve", yall: "y’all", "yall’ll": "y’all’ll", "y’allll": "y’all’ll",
  "yall’d’ve": "y’all’d’ve", "y’alld’ve": "y’all’d’ve", "y’all’dve": "y’all’d’ve", youd: "you’d", "youd’ve": "you’d’ve",
  "you’dve": "you’d’ve", youll: "you’ll", youre: "you’re", youve: "you’ve",
};
const MANUAL_MAP: Record<string, string> = {
  none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9', ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
const PUNCT = [';', ':', '/', "'", '[', ']', '"', '(', ')', '=', '+', '\\', '_', '>', '<', '@', '`', ',', '?'];
const COMMA_STRIP = /(\d)(,)(\d)/;
// The official pattern's "(?!<=\d)" is a typo for a lookbehind; as written it strips every '.' not before a digit.
const PERIOD_STRIP = /(?!<=\d)(\.)(?!\d)/g;
// vqaEval.py passes re.UNICODE (32) as re.sub's `count` argument: at most 32 periods are stripped.
const PERIOD_STRIP_COUNT = 32;

/** vqaEval.py `processPunctuation`. */
export function vqaProcessPunctuation(inText: string): string {
  let out = inText;
  const hasCommaNumber = COMMA_STRIP.test(inText);
  for (const p of PUNCT) {
    if (inText.includes(`${p} `) || inText.includes(` ${p}`) || hasCommaNumber) out = out.split(p).join('');
    else out = out.split(p).join(' ');
  }
  let stripped = 0;
  return out.replace(PERIOD_STRIP, (m) => (stripped++ < PERIOD_STRIP_COUNT ? '' : m));
}

/** vqaEval.py `processDigitArticle`: lowercase, number words to digits, no articles, contractions. */
export function vqaProcessDigitArticle(inText: string): string {
  const words = inText
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .map((w) => MANUAL_MAP[w] ?? w)
    .filter((w) => !ARTICLES.has(w));
  return words.map((w) => (Object.hasOwn(CONTRACTIONS, w) ? CONTRACTIONS[w] : w)).join(' ');
}

/** The official answer normalisation applied to a predicted answer. */
export function normalizeVqaAnswer(answer: string): string {
  return vqaProcessDigitArticle(vqaProcessPunctuation(answer.replace(/\n/g, ' ').replace(/\t/g, ' ').trim()));
}

/**
 * VQA-v2 accuracy of one prediction against its (usually 10) human answers: min(1, matches / 3) averaged over
 * the leave-one-out subsets. As in vqaEval.py, human answers are only punctuation-processed, and only when
 * they disagree.
 */
export function vqaV2Accuracy(prediction: string, humanAnswers: readonly string[]): number {
  if (humanAnswers.length === 0) return 0;
  const res = normalizeVqaAnswer(prediction);
  const gts = new Set(humanAnswers).size > 1 ? humanAnswers.map(vqaProcessPunctuation) : [...humanAnswers];
  let total = 0;
  for (let left = 0; left < gts.length; left++) {
    let matches = 0;
    for (let k = 0; k < gts.length; k++) if (k !== left && gts[k] === res) matches++;
    total += Math.min(1, matches / 3);
  }
  return total / gts.length;
}

/** One VQA-v2 question with its human answers. */
export interface VqaV2Item {
  type: string;
  answers: readonly string[];
  prediction: string;
}

/** VQA-v2 accuracy: overall mean and mean per question type (fractions). */
export function vqaV2Summary(items: readonly VqaV2Item[]): { overall: number; perType: Record<string, number> } {
  const byType = new Map<string, number[]>();
  const all = items.map((item) => {
    const acc = vqaV2Accuracy(item.prediction, item.answers);
    const list = byType.get(item.type) ?? [];
    list.push(acc);
    byType.set(item.type, list);
    return acc;
  });
  const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  return { overall: mean(all), perType: Object.fromEntries([...byType].map(([t, xs]) => [t, mean(xs)])) };
}
