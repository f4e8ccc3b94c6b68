import { describe, expect, it } from 'vitest';
import { americanize } from './americanize';
import { ptbTokenize, ptbTokens } from './ptb-tokenizer';

describe('PTB tokenizer + coco punctuation filter', () => {
  it('splits clitics like the Penn Treebank', () => {
    expect(ptbTokens("it's a city's road")).toEqual(['it', "'s", 'a', 'city', "'s", 'road']);
    expect(ptbTokens("don't can't isn't")).toEqual(['do', "n't", 'ca', "n't", 'is', "n't"]);
    expect(ptbTokens('I cannot see')).toEqual(['I', 'can', 'not', 'see']);
  });

  it('keeps hyphens and underscores inside words and escapes slashes', () => {
    expect(ptbTokenize('A tree-lined road and a four-lane highway')).toBe('a tree-lined road and a four-lane highway');
    expect(ptbTokenize('the viaduct criss_crossing .')).toBe('the viaduct criss_crossing');
    expect(ptbTokenize('houses and/or trees')).toBe('houses and\\/or trees');
  });

  it('turns brackets into -LRB-/-RRB-, which survive the filter once lowercased (toolkit quirk)', () => {
    expect(ptbTokens('a lake (dry)')).toEqual(['a', 'lake', '-LRB-', 'dry', '-RRB-']);
    expect(ptbTokenize('a lake (dry)')).toBe('a lake -lrb- dry -rrb-');
  });

  it('lowercases and drops the punctuation list', () => {
    expect(ptbTokenize('Many Planes, parked; near "the" terminal... Right?!')).toBe('many planes parked near the terminal right ?!');
    expect(ptbTokenize('A road -- wide - and long.')).toBe('a road wide and long');
  });

  it('keeps numbers whole and splits units', () => {
    expect(ptbTokenize('about 3.5km and 2,000 cars')).toBe('about 3.5 km and 2,000 cars');
  });

  it('americanizes lowercase British spellings before lowercasing (Grey stays grey)', () => {
    expect(ptbTokenize('the grey centre of the neighbourhood')).toBe('the gray center of the neighborhood');
    expect(ptbTokenize('Grey roofs')).toBe('grey roofs');
    expect(ptbTokenize('a colour', { americanize: false })).toBe('a colour');
    expect(americanize('colour')).toBe('color');
    expect(americanize('contour')).toBe('contour');
    expect(americanize('four')).toBe('four');
  });

  it('reduplicates the period after a sentence-final abbreviation', () => {
    expect(ptbTokens('trees etc. The end')).toEqual(['trees', 'etc.', '.', 'The', 'end']);
    expect(ptbTokens('the U.S. one')).toEqual(['the', 'U.S.', 'one']);
  });

  it('gives an empty string for empty or punctuation-only text', () => {
    expect(ptbTokenize('')).toBe('');
    expect(ptbTokenize(' . , ')).toBe('');
  });
});
