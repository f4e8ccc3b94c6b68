/**
 * English function words for Meteor's δ weighting (content vs function words). Meteor 1.5 reads its own list
 * (`function/english.words` inside the jar), which is not available here; this is a standard list of English
 * closed-class words (articles, determiners, pronouns, prepositions, conjunctions, auxiliaries) and common
 * punctuation tokens. Differences from Meteor's list shift METEOR slightly; BLEU/ROUGE-L/CIDEr are unaffected.
 */
export const ENGLISH_FUNCTION_WORDS: ReadonlySet<string> = new Set(
  `a about above across after against along among an and another any are around as at be because been before
being below beneath beside besides between beyond both but by can could did do does doing down during each
either every few for from had has have having he her here hers herself him himself his how i if in inside
into is it its itself just less like many may me might more most much must my myself near neither no nor not
of off on once one only onto or other others our ours ourselves out outside over own per same shall she should
since so some such than that the their theirs them themselves then there these they this those though through
throughout to too toward towards under underneath unless until up upon us very via was we were what when where
whether which while who whom whose why will with within without would yet you your yours yourself yourselves
's 're 've 'd 'll 'm n't . , ; : ! ? ' " \` -- - ( ) -lrb- -rrb-`
    .split(/\s+/)
    .filter((word) => word.length > 0),
);
