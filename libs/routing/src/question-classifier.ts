import type { QuestionType, QuestionTypeRule } from '@rsmoe/contracts';

/** A classification rule: the first rule whose pattern matches the normalised question decides its type. */
export interface QuestionRule {
  type: QuestionType;
  pattern: RegExp;
  /** Short name used in routing reasons, e.g. `how many`. */
  name: string;
}

/** The type of a question and the rule that decided it (`undefined` rule: nothing matched, type `other`). */
export interface QuestionClassification {
  type: QuestionType;
  rule?: string;
}

/**
 * Built-in rules, in order (RSVQA LR/HR phrasing). Order matters:
 * - a question *starting* with "how many" / "what is the number of" is a count even if it also compares
 *   (but "how many square meters" is an area);
 * - comparison comes before presence and count ("are there more X than Y", "is the number of X equal to ...");
 * - rural_urban before area ("is it a rural or an urban area");
 * - area needs an area phrase ("area covered", "m2", "how large"), because "water area" is an RSVQA class
 *   name and "is there a water area" is a presence question.
 */
export const BUILT_IN_QUESTION_RULES: readonly QuestionRule[] = Object.freeze([
  { type: 'count', name: 'how many', pattern: /^(how many(?! (square|m2|km2|hectares?|acres?)\b)|what is the number of|what number of|count the)\b/ },
  { type: 'comparison', name: 'more/less ... than', pattern: /\b(more|less|fewer|greater|larger|bigger|smaller|higher|lower|wider|longer)\b.*\bthan\b/ },
  { type: 'comparison', name: 'same/equal', pattern: /\b(same (number|amount|size|quantity)|equal|as (many|much|large|big) .*\bas\b|compared? (to|with))\b/ },
  { type: 'rural_urban', name: 'rural or urban', pattern: /\b(rural|urban)\b/ },
  {
    type: 'area',
    name: 'area covered',
    pattern:
      /\b(area|surface|land) (is )?(covered|occupied)\b|\b(m2|km2|square (meters?|metres?|kilometers?|kilometres?|km|m))\b|m²|\bhow (large|big) is the area\b|\bwhat is the (area|size|extent|surface)\b|\bhow much (area|surface|land)\b/,
  },
  { type: 'count', name: 'number of', pattern: /\b(how many|number of)\b/ },
  {
    type: 'presence',
    name: 'is there',
    pattern:
      /^(is|are) there\b|^(is|are) (a|an|any|some|the)\b.*\b(present|visible)\b|^(is|are) (a|an|any|some)\b|^(does|do) (the |this )?(image|picture|scene|area|photo) (contain|have|include|show)\b|\bcan you see\b/,
  },
] satisfies QuestionRule[]);

/** Lower-case, punctuation to spaces (keeping ² and letters/digits), single spaces, trimmed. */
export function normaliseQuestion(question: string): string {
  return question
    .toLowerCase()
    .replace(/[^\p{L}\p{N}²]+/gu, ' ')
    .trim();
}

/** Compiles a pack's rules (case-insensitive); they run before the built-in rules. */
export function compilePackRules(rules: readonly QuestionTypeRule[]): QuestionRule[] {
  return rules.map((rule) => ({ type: rule.type, pattern: new RegExp(rule.pattern, 'i'), name: `pack rule /${rule.pattern}/` }));
}

/** Classifies a question with `rules` (default: the built-in ones); `other` when none matches. */
export function classifyQuestion(question: string, rules: readonly QuestionRule[] = BUILT_IN_QUESTION_RULES): QuestionClassification {
  const normalised = normaliseQuestion(question);
  for (const rule of rules) {
    if (rule.pattern.test(normalised)) return { type: rule.type, rule: rule.name };
  }
  return { type: 'other' };
}
