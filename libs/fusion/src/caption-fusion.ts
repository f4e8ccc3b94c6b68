import type { CaptionFusion, CaptionFusionStrategy, DroppedFragment } from './fusion.types';
import { usablePartials } from './partial-order';
import { formatSentence, fragmentKey, joinClauses, splitClauses, splitSentences } from './text';

/**
 * `ordered-dedup` (default): partials in fusion order (theme → objects → relations); each split into
 * sentences, each sentence into clauses (at `,` `;` `and`). A sentence whose key (lower case, no
 * punctuation, no articles) was already said — by an earlier expert or earlier in the same partial —
 * is dropped; so is a clause another expert already said as a clause or a whole sentence. Kept sentences are
 * capitalised and terminated. Failed and empty partials are skipped.
 */
export const orderedDedupCaptions: CaptionFusionStrategy = (partials, { order }) => {
  const { usable, ignored } = usablePartials(partials, order);
  const said = new Map<string, string>();
  const droppedSentences: DroppedFragment[] = [];
  const droppedClauses: DroppedFragment[] = [];
  const segments: CaptionFusion['segments'] = [];

  for (const { expertId, text } of usable) {
    const kept: string[] = [];
    for (const sentence of splitSentences(text)) {
      const sentenceKey = fragmentKey(sentence.body);
      if (sentenceKey === '') continue;
      const earlier = said.get(sentenceKey);
      if (earlier !== undefined) {
        droppedSentences.push({ expertId, text: sentence.body, duplicateOf: earlier });
        continue;
      }
      const clauses = splitClauses(sentence.body);
      const keptClauses = [];
      const droppedHere: DroppedFragment[] = [];
      for (const clause of clauses) {
        const key = fragmentKey(clause.text);
        if (key === '') continue;
        const owner = said.get(key);
        // Clauses repeat only across experts: within one partial, short clauses such as "white" or "is at
        // the bottom" describe different subjects ("one building , white , is at the bottom .").
        if (owner !== undefined && owner !== expertId) {
          droppedHere.push({ expertId, text: clause.text, duplicateOf: owner });
          continue;
        }
        if (owner === undefined) said.set(key, expertId);
        keptClauses.push(clause);
      }
      said.set(sentenceKey, expertId);
      if (keptClauses.length === 0) {
        // Every clause was said before: the sentence as a whole is a repeat.
        droppedSentences.push({ expertId, text: sentence.body, duplicateOf: droppedHere[0]?.duplicateOf ?? expertId });
        continue;
      }
      droppedClauses.push(...droppedHere);
      kept.push(formatSentence(joinClauses(keptClauses), sentence.terminator));
    }
    if (kept.length === 0) ignored.push({ expertId, reason: 'duplicate' });
    else segments.push({ expertId, text: kept.join(' ') });
  }
  return captionFrom(segments, { droppedSentences, droppedClauses, ignoredExperts: ignored });
};

/** `concat`: every usable partial in fusion order, sentences tidied, nothing removed. */
export const concatCaptions: CaptionFusionStrategy = (partials, { order }) => {
  const { usable, ignored } = usablePartials(partials, order);
  const segments = usable
    .map(({ expertId, text }) => ({ expertId, text: splitSentences(text).map((s) => formatSentence(s.body, s.terminator)).join(' ') }))
    .filter((segment) => segment.text !== '');
  return captionFrom(segments, { droppedSentences: [], droppedClauses: [], ignoredExperts: ignored });
};

/** `first-ok`: the first usable partial in fusion order, tidied; the others are not used. */
export const firstOkCaption: CaptionFusionStrategy = (partials, context) => {
  const all = concatCaptions(partials, context);
  const [first, ...rest] = all.segments;
  return captionFrom(first ? [first] : [], {
    droppedSentences: [],
    droppedClauses: [],
    ignoredExperts: [...all.ignoredExperts, ...rest.map((s) => ({ expertId: s.expertId, reason: 'not-selected' as const }))],
  });
};

function captionFrom(segments: CaptionFusion['segments'], rest: Omit<CaptionFusion, 'caption' | 'usedExperts' | 'segments'>): CaptionFusion {
  return {
    caption: segments.map((s) => s.text).join(' '),
    usedExperts: segments.map((s) => s.expertId),
    segments,
    ...rest,
  };
}
