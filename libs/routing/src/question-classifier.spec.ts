import { describe, expect, it } from 'vitest';
import { classifyQuestion, compilePackRules, normaliseQuestion, BUILT_IN_QUESTION_RULES } from './question-classifier';

describe('classifyQuestion', () => {
  // RSVQA LR/HR phrasings and a few free-form ones, with the type each must get.
  const cases: [string, string][] = [
    ['Is there a road?', 'presence'],
    ['Are there residential buildings?', 'presence'],
    ['Is a water area present in the image?', 'presence'],
    ['Is there a water area?', 'presence'],
    ['Is a small road visible?', 'presence'],
    ['Does the image contain a bridge?', 'presence'],
    ['Can you see any ships ?', 'presence'],
    ['How many buildings are there?', 'count'],
    ['how many cars are in the parking lot ?', 'count'],
    ['What is the number of roads?', 'count'],
    ['What is the number of small buildings in the image?', 'count'],
    ['How many buildings are larger than the pool?', 'count'],
    ['Are there more buildings than roads?', 'comparison'],
    ['Are there less water areas than commercial buildings?', 'comparison'],
    ['Are there fewer trees than houses?', 'comparison'],
    ['Is the number of roads equal to the number of buildings?', 'comparison'],
    ['Is the number of buildings greater than the number of water areas?', 'comparison'],
    ['Are there as many houses as trees?', 'comparison'],
    ['Is the lake bigger than the pond?', 'comparison'],
    ['Is it a rural or an urban area?', 'rural_urban'],
    ['is this an urban or rural scene', 'rural_urban'],
    ['Is this area urban?', 'rural_urban'],
    ['What is the area covered by small buildings?', 'area'],
    ['What is the area covered by residential buildings ?', 'area'],
    ['Is the area covered by buildings more than 100 m2?', 'comparison'],
    ['How much land is covered by crops?', 'area'],
    ['How many square meters of grass are there?', 'area'],
    ['What is the size of the lake in square meters?', 'area'],
    ['What colour is the roof?', 'other'],
    ['Describe the scene.', 'other'],
    ['', 'other'],
  ];

  it.each(cases)('%j → %s', (question, type) => {
    expect(classifyQuestion(question).type).toBe(type);
  });

  it('names the rule that decided, and none for other', () => {
    expect(classifyQuestion('How many cars?')).toEqual({ type: 'count', rule: 'how many' });
    expect(classifyQuestion('Are there more cars than trees?')).toEqual({ type: 'comparison', rule: 'more/less ... than' });
    expect(classifyQuestion('Why?')).toEqual({ type: 'other' });
  });

  it('lets pack rules run first', () => {
    const rules = [...compilePackRules([{ type: 'area', pattern: '\\bhow big\\b' }]), ...BUILT_IN_QUESTION_RULES];
    expect(classifyQuestion('How big is the lake?', rules)).toEqual({ type: 'area', rule: 'pack rule /\\bhow big\\b/' });
    expect(classifyQuestion('How big is the lake?').type).toBe('other');
  });

  it('normalises case, punctuation and spacing', () => {
    expect(normaliseQuestion('  Is   there a ROAD?! ')).toBe('is there a road');
    expect(normaliseQuestion('Area in m², please.')).toBe('area in m² please');
  });
});
