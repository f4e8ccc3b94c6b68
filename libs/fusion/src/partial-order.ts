import type { ExpertPartial, IgnoredExpert } from './fusion.types';

/** Partials sorted by `order` (stable; experts not in `order` last, in input order). */
export function orderPartials<T extends { expertId: string }>(partials: readonly T[], order: readonly string[]): T[] {
  const rank = (id: string) => {
    const index = order.indexOf(id);
    return index === -1 ? order.length : index;
  };
  return partials
    .map((partial, index) => ({ partial, index }))
    .sort((a, b) => rank(a.partial.expertId) - rank(b.partial.expertId) || a.index - b.index)
    .map(({ partial }) => partial);
}

/** Splits ordered partials into the usable ones (`ok`, non-blank text) and the ignored ones. */
export function usablePartials(partials: readonly ExpertPartial[], order: readonly string[]): { usable: ExpertPartial[]; ignored: IgnoredExpert[] } {
  const usable: ExpertPartial[] = [];
  const ignored: IgnoredExpert[] = [];
  for (const partial of orderPartials(partials, order)) {
    if (partial.status !== 'ok') ignored.push({ expertId: partial.expertId, reason: 'not-ok' });
    else if (partial.text.trim() === '') ignored.push({ expertId: partial.expertId, reason: 'empty' });
    else usable.push(partial);
  }
  return { usable, ignored };
}
