import { describe, expect, it } from 'vitest';
import { formatSentence, fragmentKey, joinClauses, splitClauses, splitSentences, tidySpacing } from './text';

describe('text helpers', () => {
  it('splits sentences at terminators followed by a space or the end', () => {
    expect(splitSentences('a road . two cars! is it 2.5 m? yes')).toEqual([
      { body: 'a road', terminator: '.' },
      { body: 'two cars', terminator: '!' },
      { body: 'is it 2.5 m', terminator: '?' },
      { body: 'yes', terminator: '.' },
    ]);
    expect(splitSentences(' . .. ')).toEqual([]);
    expect(splitSentences('trailing comma ,')).toEqual([{ body: 'trailing comma', terminator: '.' }]);
  });

  it('splits clauses and remembers their separators', () => {
    const clauses = splitClauses('a, b; c, and d and e');
    expect(clauses).toEqual([
      { text: 'a', separator: '' },
      { text: 'b', separator: ', ' },
      { text: 'c', separator: '; ' },
      { text: 'd', separator: ', and ' },
      { text: 'e', separator: ' and ' },
    ]);
    expect(joinClauses(clauses)).toBe('a, b; c, and d and e');
    expect(joinClauses(clauses.slice(1))).toBe('b; c, and d and e');
    expect(splitClauses('sand bank')).toEqual([{ text: 'sand bank', separator: '' }]);
  });

  it('keys fragments without case, punctuation or articles', () => {
    expect(fragmentKey('The  Houses, near an airport!')).toBe('houses near airport');
    expect(fragmentKey('a the an')).toBe('');
  });

  it('formats and tidies', () => {
    expect(tidySpacing('a road , two cars ;x  .')).toBe('a road, two cars; x.');
    expect(formatSentence('  many boats ', '?')).toBe('Many boats?');
    expect(formatSentence('   ')).toBe('');
  });
});
