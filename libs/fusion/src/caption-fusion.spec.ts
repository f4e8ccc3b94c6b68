import { describe, expect, it } from 'vitest';
import type { ExpertPartial } from './fusion.types';
import { createFusionRegistry, fuseCaptions, UnknownFusionStrategyError } from './fusion-registry';

const ORDER = ['theme', 'object', 'relation'];
const ok = (expertId: string, text: string): ExpertPartial => ({ expertId, text, status: 'ok' });

describe('ordered-dedup caption fusion', () => {
  it('orders theme → objects → relations whatever order the partials arrive in', () => {
    const fused = fuseCaptions(
      [ok('relation', 'the houses are next to the road .'), ok('theme', 'a dense residential area .'), ok('object', 'many white houses and a road .')],
      { order: ORDER },
    );
    expect(fused.caption).toBe('A dense residential area. Many white houses and a road. The houses are next to the road.');
    expect(fused.usedExperts).toEqual(['theme', 'object', 'relation']);
    expect(fused.strategy).toBe('ordered-dedup');
  });

  it('drops a sentence another expert already said, ignoring case, spacing, punctuation and articles', () => {
    const fused = fuseCaptions(
      [ok('theme', 'This is a residential area. There are many houses.'), ok('object', 'there are many  houses ! A road crosses the area.')],
      { order: ORDER },
    );
    expect(fused.caption).toBe('This is a residential area. There are many houses. A road crosses the area.');
    expect(fused.droppedSentences).toEqual([{ expertId: 'object', text: 'there are many houses', duplicateOf: 'theme' }]);
    expect(fused.segments).toEqual([
      { expertId: 'theme', text: 'This is a residential area. There are many houses.' },
      { expertId: 'object', text: 'A road crosses the area.' },
    ]);
  });

  it('drops a sentence repeated within one partial', () => {
    const fused = fuseCaptions([ok('theme', 'a farm . a farm . green fields .')], { order: ORDER });
    expect(fused.caption).toBe('A farm. Green fields.');
    expect(fused.droppedSentences).toEqual([{ expertId: 'theme', text: 'a farm', duplicateOf: 'theme' }]);
  });

  it('drops clauses already said and keeps the rest with the right separators', () => {
    const fused = fuseCaptions(
      [ok('theme', 'a river, some trees.'), ok('object', 'a bridge, some trees and a boat.'), ok('relation', 'some trees; a river and the bridge near the boat.')],
      { order: ORDER },
    );
    expect(fused.caption).toBe('A river, some trees. A bridge and a boat. The bridge near the boat.');
    expect(fused.droppedClauses).toEqual([
      { expertId: 'object', text: 'some trees', duplicateOf: 'theme' },
      { expertId: 'relation', text: 'some trees', duplicateOf: 'theme' },
      { expertId: 'relation', text: 'a river', duplicateOf: 'theme' },
    ]);
  });

  it('keeps clauses repeated within one partial: they describe different subjects', () => {
    const fused = fuseCaptions(
      [ok('theme', 'an airport .'), ok('object', 'one building , white , is at the bottom . one airplane , white , is at the bottom .')],
      { order: ORDER },
    );
    expect(fused.caption).toBe('An airport. One building, white, is at the bottom. One airplane, white, is at the bottom.');
    expect(fused.droppedClauses).toEqual([]);
  });

  it('keeps a clause that differs in more than articles', () => {
    const fused = fuseCaptions([ok('theme', 'some trees.'), ok('object', 'the trees; a river.')], { order: ORDER });
    expect(fused.caption).toBe('Some trees. The trees; a river.');
  });

  it('counts a sentence made only of clauses already said as a dropped sentence', () => {
    const fused = fuseCaptions([ok('theme', 'a lake and a forest.'), ok('object', 'a forest, a lake.')], { order: ORDER });
    expect(fused.caption).toBe('A lake and a forest.');
    expect(fused.droppedSentences).toEqual([{ expertId: 'object', text: 'a forest, a lake', duplicateOf: 'theme' }]);
    expect(fused.droppedClauses).toEqual([]);
    expect(fused.usedExperts).toEqual(['theme']);
    expect(fused.ignoredExperts).toEqual([{ expertId: 'object', reason: 'duplicate' }]);
  });

  it('treats ", and" as one separator', () => {
    const fused = fuseCaptions([ok('theme', 'roads.'), ok('object', 'cars, roads, and trees.')], { order: ORDER });
    expect(fused.caption).toBe('Roads. Cars, and trees.');
  });

  it('tidies spacing, capitalises and terminates sentences, keeping ? and !', () => {
    const fused = fuseCaptions([ok('theme', '  an airport , with two runways   is it busy ? yes  ')], { order: ORDER });
    expect(fused.caption).toBe('An airport, with two runways is it busy? Yes.');
  });

  it('does not split decimal numbers', () => {
    expect(fuseCaptions([ok('theme', 'a road 2.5 m wide.')], { order: ORDER }).caption).toBe('A road 2.5 m wide.');
  });

  it('skips failed, timed-out, skipped and blank partials', () => {
    const fused = fuseCaptions(
      [
        { expertId: 'theme', text: 'half a sentence', status: 'failed' },
        ok('object', '   '),
        { expertId: 'relation', text: 'late', status: 'timed_out' },
        ok('extra', 'a golf course .'),
      ],
      { order: ORDER },
    );
    expect(fused.caption).toBe('A golf course.');
    expect(fused.usedExperts).toEqual(['extra']);
    expect(fused.ignoredExperts).toEqual([
      { expertId: 'theme', reason: 'not-ok' },
      { expertId: 'object', reason: 'empty' },
      { expertId: 'relation', reason: 'not-ok' },
    ]);
  });

  it('gives an empty caption when nothing is usable', () => {
    const fused = fuseCaptions([{ expertId: 'theme', text: '', status: 'failed' }], { order: ORDER });
    expect(fused).toMatchObject({ caption: '', usedExperts: [], segments: [] });
  });

  it('keeps the tiny fixture model output (no punctuation) whole', () => {
    const fused = fuseCaptions(
      [ok('theme', 'main white land main white land which relations'), ok('object', 'main white land main white land which relations')],
      { order: ORDER },
    );
    expect(fused.caption).toBe('Main white land main white land which relations.');
    expect(fused.droppedSentences).toHaveLength(1);
  });

  it('puts experts missing from the order after the ordered ones, in arrival order', () => {
    const fused = fuseCaptions([ok('z', 'zeta.'), ok('object', 'beta.'), ok('y', 'gamma.'), ok('theme', 'alpha.')], { order: ORDER });
    expect(fused.usedExperts).toEqual(['theme', 'object', 'z', 'y']);
  });

  it('uses the partials order when no order is given', () => {
    expect(fuseCaptions([ok('b', 'one.'), ok('a', 'two.')]).caption).toBe('One. Two.');
  });
});

describe('concat and first-ok caption fusion', () => {
  const partials = [ok('object', 'a road. a road.'), ok('theme', 'a road .'), { expertId: 'relation', text: 'x', status: 'failed' as const }];

  it('concat keeps every sentence, in order', () => {
    const fused = fuseCaptions(partials, { strategy: 'concat', order: ORDER });
    expect(fused.caption).toBe('A road. A road. A road.');
    expect(fused.usedExperts).toEqual(['theme', 'object']);
  });

  it('first-ok takes the first usable partial', () => {
    const fused = fuseCaptions(partials, { strategy: 'first-ok', order: ORDER });
    expect(fused.caption).toBe('A road.');
    expect(fused.usedExperts).toEqual(['theme']);
    expect(fused.ignoredExperts).toEqual([
      { expertId: 'relation', reason: 'not-ok' },
      { expertId: 'object', reason: 'not-selected' },
    ]);
  });
});

describe('caption strategy registry', () => {
  it('runs a registered strategy by name', () => {
    const registry = createFusionRegistry().registerCaption('shout', (partials) => ({
      caption: partials.map((p) => p.text.toUpperCase()).join(' '),
      usedExperts: partials.map((p) => p.expertId),
      segments: [],
      droppedSentences: [],
      droppedClauses: [],
      ignoredExperts: [],
    }));
    expect(fuseCaptions([ok('a', 'hi')], { strategy: 'shout', registry }).caption).toBe('HI');
    expect(registry.captionStrategyNames()).toEqual(['ordered-dedup', 'concat', 'first-ok', 'shout']);
  });

  it('refuses a taken name unless replacing, and an unknown strategy names the known ones', () => {
    const registry = createFusionRegistry();
    expect(() => registry.registerCaption('concat', () => ({}) as never)).toThrow(/already registered/);
    registry.registerCaption('concat', () => ({}) as never, { replace: true });
    expect(() => fuseCaptions([], { strategy: 'nope', registry })).toThrow(UnknownFusionStrategyError);
    expect(() => fuseCaptions([], { strategy: 'nope' })).toThrow('unknown caption fusion strategy "nope" (known: ordered-dedup, concat, first-ok)');
    expect(registry.hasCaption('ordered-dedup')).toBe(true);
    expect(registry.hasAnswer('ordered-dedup')).toBe(false);
  });
});
