import { normaliseAnswer } from './answer-normalise';
import type { AnswerFusion, AnswerFusionStrategy, AnswerVote, ExpertPartial, IgnoredExpert } from './fusion.types';
import { usablePartials } from './partial-order';

interface Ballot {
  expertId: string;
  raw: string;
  normalised: string;
}

function ballots(partials: readonly ExpertPartial[], order: readonly string[]): { ballots: Ballot[]; ignored: IgnoredExpert[] } {
  const { usable, ignored } = usablePartials(partials, order);
  const cast: Ballot[] = [];
  for (const partial of usable) {
    const normalised = normaliseAnswer(partial.text);
    if (normalised === '') ignored.push({ expertId: partial.expertId, reason: 'empty' });
    else cast.push({ expertId: partial.expertId, raw: partial.text.trim(), normalised });
  }
  return { ballots: cast, ignored };
}

/** Groups ballots by answer: most votes first; ties go to the answer whose first voter has the higher priority. */
function tally(cast: readonly Ballot[]): AnswerVote[] {
  const groups = new Map<string, AnswerVote & { firstIndex: number }>();
  cast.forEach((ballot, index) => {
    const group = groups.get(ballot.normalised) ?? { answer: ballot.normalised, experts: [], firstIndex: index };
    group.experts.push(ballot.expertId);
    groups.set(ballot.normalised, group);
  });
  return [...groups.values()]
    .sort((a, b) => b.experts.length - a.experts.length || a.firstIndex - b.firstIndex)
    .map(({ answer, experts }) => ({ answer, experts }));
}

function decide(chosen: string | undefined, cast: readonly Ballot[], votes: AnswerVote[], ignored: IgnoredExpert[]): AnswerFusion {
  if (chosen === undefined) return { answer: '', rawAnswer: '', usedExperts: [], votes, ignoredExperts: ignored };
  const used = cast.filter((b) => b.normalised === chosen);
  const others = cast.filter((b) => b.normalised !== chosen).map((b) => ({ expertId: b.expertId, reason: 'not-selected' as const }));
  return { answer: chosen, rawAnswer: used[0].raw, usedExperts: used.map((b) => b.expertId), votes, ignoredExperts: [...ignored, ...others] };
}

/** `priority` (default): the answer of the first expert in priority order that answered. */
export const priorityAnswer: AnswerFusionStrategy = (partials, { order }) => {
  const { ballots: cast, ignored } = ballots(partials, order);
  return decide(cast[0]?.normalised, cast, tally(cast), ignored);
};

/** `majority`: the answer most experts gave (after normalisation); a tie goes to the higher-priority expert's answer. */
export const majorityAnswer: AnswerFusionStrategy = (partials, { order }) => {
  const { ballots: cast, ignored } = ballots(partials, order);
  const votes = tally(cast);
  return decide(votes[0]?.answer, cast, votes, ignored);
};
