import { describe, expect, it } from 'vitest';
import { normaliseAnswer } from './answer-normalise';
import type { ExpertPartial } from './fusion.types';
import { createFusionRegistry, fuseAnswers } from './fusion-registry';

const ORDER = ['theme', 'object', 'relation'];
const ok = (expertId: string, text: string): ExpertPartial => ({ expertId, text, status: 'ok' });

describe('normaliseAnswer', () => {
  it.each([
    ['Yes', 'yes'],
    ['yes.', 'yes'],
    ['Yes, there is a road.', 'yes'],
    ['YEAH!', 'yes'],
    ['true', 'yes'],
    ['Nope', 'no'],
    ['no roads', 'no'],
    ['False.', 'no'],
    ['three', '3'],
    ['Three cars.', '3 cars'],
    ['twenty one', '21'],
    ['twenty-one', '21'],
    ['forty', '40'],
    ['none', '0'],
    ['12', '12'],
    ['  The   river ', 'river'],
    ['"urban"', 'urban'],
    ['between 10m2 and 100m2', 'between 10m2 and 100m2'],
    ['', ''],
    [' ?! ', ''],
  ])('%j → %j', (raw, expected) => {
    expect(normaliseAnswer(raw)).toBe(expected);
  });
});

describe('priority answer fusion', () => {
  it('takes the answer of the first expert in priority order', () => {
    const fused = fuseAnswers([ok('relation', 'no'), ok('object', 'Yes, there is.'), ok('theme', '')], { order: ORDER });
    expect(fused).toMatchObject({ strategy: 'priority', answer: 'yes', rawAnswer: 'Yes, there is.', usedExperts: ['object'] });
    expect(fused.votes).toEqual([
      { answer: 'yes', experts: ['object'] },
      { answer: 'no', experts: ['relation'] },
    ]);
    expect(fused.ignoredExperts).toEqual([
      { expertId: 'theme', reason: 'empty' },
      { expertId: 'relation', reason: 'not-selected' },
    ]);
  });

  it('skips failed experts', () => {
    const fused = fuseAnswers([{ expertId: 'theme', text: 'yes', status: 'failed' }, ok('object', 'two')], { order: ORDER });
    expect(fused.answer).toBe('2');
    expect(fused.usedExperts).toEqual(['object']);
  });

  it('lists every expert that agrees with the chosen answer', () => {
    const fused = fuseAnswers([ok('theme', 'three'), ok('object', '3'), ok('relation', '4')], { order: ORDER });
    expect(fused.usedExperts).toEqual(['theme', 'object']);
  });

  it('answers nothing when no expert answered', () => {
    expect(fuseAnswers([{ expertId: 'theme', text: '', status: 'timed_out' }], { order: ORDER })).toMatchObject({ answer: '', rawAnswer: '', usedExperts: [] });
  });
});

describe('majority answer fusion', () => {
  it('picks the answer most experts gave after normalisation', () => {
    const fused = fuseAnswers([ok('theme', 'no'), ok('object', 'Yes.'), ok('relation', 'yeah')], { strategy: 'majority', order: ORDER });
    expect(fused).toMatchObject({ answer: 'yes', rawAnswer: 'Yes.', usedExperts: ['object', 'relation'] });
    expect(fused.votes).toEqual([
      { answer: 'yes', experts: ['object', 'relation'] },
      { answer: 'no', experts: ['theme'] },
    ]);
  });

  it('breaks a tie in favour of the higher-priority expert, whatever the arrival order', () => {
    const partials = [ok('relation', '5'), ok('object', 'four'), ok('theme', 'five'), ok('x', '4')];
    const fused = fuseAnswers(partials, { strategy: 'majority', order: ORDER });
    expect(fused.answer).toBe('5');
    expect(fuseAnswers([...partials].reverse(), { strategy: 'majority', order: ORDER }).answer).toBe('5');
    expect(fuseAnswers(partials, { strategy: 'majority', order: ['object', 'theme', 'relation'] }).answer).toBe('4');
  });
});

describe('answer strategy registry', () => {
  it('runs a registered strategy and refuses an unknown one', () => {
    const registry = createFusionRegistry().registerAnswer('always-yes', () => ({ answer: 'yes', rawAnswer: 'yes', usedExperts: [], votes: [], ignoredExperts: [] }));
    expect(fuseAnswers([ok('a', 'no')], { strategy: 'always-yes', registry }).answer).toBe('yes');
    expect(() => fuseAnswers([], { strategy: 'ordered-dedup' })).toThrow('unknown answer fusion strategy "ordered-dedup" (known: priority, majority)');
  });
});
