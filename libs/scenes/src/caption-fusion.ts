import { formatSentence, fragmentKey, splitSentences } from '@rsmoe/fusion';

/** Most sentences a scene caption keeps. */
export const SCENE_CAPTION_MAX_SENTENCES = 6;

/** One sentence of the scene caption and how many captioned tiles said it. */
export interface SceneCaptionSentence {
  text: string;
  tiles: number;
  /** tiles ÷ captioned tiles. */
  share: number;
}

export interface SceneCaption {
  text: string;
  sentences: SceneCaptionSentence[];
  tilesCaptioned: number;
  /** How the caption was made, in words (the API says it with the answer). */
  method: string;
}

export const SCENE_CAPTION_METHOD =
  'tile captions split into sentences; a sentence counts once per tile that says it (compared lower-case, punctuation and articles dropped); ' +
  'the most-said sentences are kept (at most 6, each said by at least 2 tiles or 10 % of captioned tiles — any one sentence when no sentence reaches that), ' +
  'in the order they come in the tile captions (theme, then objects, then relations, as the experts fuse them); ' +
  'with classification, a first sentence names the most common tile classes and their shares';

/**
 * A scene caption from its tiles' captions: the sentences most tiles agree on (votes), in caption order. A tile
 * caption is already the router's fusion of its experts (theme → objects → relations), so a sentence's mean
 * position within the tiles' captions keeps that order. `classShares` (from classification) adds a first
 * sentence naming the scene's main classes.
 */
export function fuseSceneCaption(tileCaptions: readonly string[], classShares?: readonly { label: string; share: number }[]): SceneCaption {
  const votes = new Map<string, { text: string; tiles: number; positionSum: number }>();
  for (const caption of tileCaptions) {
    const seen = new Set<string>();
    splitSentences(caption).forEach((sentence, position) => {
      const key = fragmentKey(sentence.body);
      if (key === '' || seen.has(key)) return;
      seen.add(key);
      const entry = votes.get(key) ?? { text: formatSentence(sentence.body, sentence.terminator), tiles: 0, positionSum: 0 };
      entry.tiles += 1;
      entry.positionSum += position;
      votes.set(key, entry);
    });
  }
  const n = tileCaptions.length;
  const floor = Math.max(2, Math.ceil(0.1 * n));
  const ranked = [...votes.values()].sort((a, b) => b.tiles - a.tiles || a.positionSum / a.tiles - b.positionSum / b.tiles);
  let chosen = ranked.filter((entry) => entry.tiles >= Math.min(floor, n)).slice(0, SCENE_CAPTION_MAX_SENTENCES);
  if (chosen.length === 0) chosen = ranked.slice(0, 1);
  chosen.sort((a, b) => a.positionSum / a.tiles - b.positionSum / b.tiles);
  const sentences = chosen.map((entry) => ({ text: entry.text, tiles: entry.tiles, share: n > 0 ? entry.tiles / n : 0 }));
  const lead = classShares && classShares.length > 0 ? classLead(classShares) : undefined;
  return {
    text: [lead, ...sentences.map((s) => s.text)].filter((s): s is string => s !== undefined && s !== '').join(' '),
    sentences,
    tilesCaptioned: n,
    method: SCENE_CAPTION_METHOD,
  };
}

function classLead(shares: readonly { label: string; share: number }[]): string {
  const top = [...shares].sort((a, b) => b.share - a.share).slice(0, 3);
  const named = top.map(({ label, share }) => `${label.replaceAll('_', ' ')} (${Math.round(share * 100)} % of tiles)`);
  return `The scene is mostly ${named.length > 1 ? `${named.slice(0, -1).join(', ')} and ${named.at(-1)}` : named[0]}.`;
}
