import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidClassListError, LabelOutOfRangeError } from './errors';
import { IGNORE_LABEL, type LabelMask } from './label-mask';
import { decodeMaskText, encodeMaskText, MAX_MASK_GRID_CELLS, parseMaskText } from './mask-text';

const CLASSES = ['others', 'water', 'land', 'low vegetation'];
const grid = (width: number, height: number, values: number[]): LabelMask => ({ width, height, data: Uint8Array.from(values) });

describe('parseMaskText', () => {
  it('expands run-length rows into a label grid sized by the text', () => {
    expect(parseMaskText('water*3, land*5\nwater*8', CLASSES)).toEqual({
      kind: 'grid',
      grid: grid(8, 2, [1, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]),
    });
  });

  it('matches labels without case or extra spaces, and accepts CRLF, spaces around * and blank lines', () => {
    const text = '\nOthers *2,  Low   Vegetation* 1\r\n\r\nwater*3\n';
    expect(parseMaskText(text, CLASSES)).toEqual({ kind: 'grid', grid: grid(3, 2, [0, 0, 3, 1, 1, 1]) });
  });

  it('is unparseable when rows differ in width, naming the row', () => {
    expect(parseMaskText('water*3, land*5\nwater*8\nland*7', CLASSES)).toEqual({
      kind: 'unparseable',
      reason: 'row 3 covers 7 cells, row 1 covers 8',
    });
  });

  it('is unparseable for an unknown label, naming it', () => {
    expect(parseMaskText('water*3\nTree*3', CLASSES)).toEqual({ kind: 'unparseable', reason: 'row 2: unknown label "tree"' });
  });

  it('says what is wrong with a malformed cell', () => {
    const reason = (text: string) => {
      const parsed = parseMaskText(text, CLASSES);
      return parsed.kind === 'unparseable' ? parsed.reason : 'parsed';
    };
    expect(reason('')).toBe('no rows in the mask answer');
    expect(reason('water*3, ')).toBe('row 1: an empty cell');
    expect(reason('water 3')).toBe('row 1: "water 3" is not a label*count cell');
    expect(reason('*3')).toBe('row 1: "*3" has no label');
    expect(reason('water*three')).toBe('row 1: "water*three" has no count');
    expect(reason('water*-3')).toBe('row 1: "water*-3" has no count');
    expect(reason('water*0, land*2')).toBe('row 1: "water*0" has a zero count');
    expect(reason(`water*${'9'.repeat(400)}`)).toBe(`row 1: covers more than ${MAX_MASK_GRID_CELLS} cells`);
    expect(reason('water*1024\n'.repeat(1025))).toBe(`the grid is larger than ${MAX_MASK_GRID_CELLS} cells`);
    expect(reason(`${'x'.repeat(100)}*2`)).toBe(`row 1: unknown label "${'x'.repeat(40)}…"`);
    expect(reason(42 as unknown as string)).toBe('the answer is not text');
  });

  it('rejects a class list that cannot name labels, listing every problem', () => {
    expect(() => parseMaskText('water*1', [])).toThrow(InvalidClassListError);
    expect(() => parseMaskText('water*1', ['water', ' Water ', 'a*b', ' '])).toThrow(
      'invalid class list: classes 0 and 1 are both "water"; class 2 ("a*b") holds "*", "," or a line break; class 3 is blank',
    );
    expect(() => parseMaskText('water*1', Array.from({ length: 256 }, (_, i) => `c${i}`))).toThrow('256 classes, at most 255');
  });
});

describe('decodeMaskText', () => {
  it('resizes the grid to the image', () => {
    const decoded = decodeMaskText('others*1, water*1\nland*2', CLASSES, { width: 4, height: 4 });
    expect(decoded).toEqual({
      kind: 'mask',
      grid: grid(2, 2, [0, 1, 2, 2]),
      mask: grid(4, 4, [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]),
    });
  });

  it('passes an unparseable answer through', () => {
    expect(decodeMaskText('water*2\nwater*1', CLASSES, { width: 4, height: 4 })).toEqual({
      kind: 'unparseable',
      reason: 'row 2 covers 1 cells, row 1 covers 2',
    });
  });
});

describe('encodeMaskText', () => {
  it('merges equal neighbours of a row into one cell', () => {
    expect(encodeMaskText(grid(8, 2, [1, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]), CLASSES)).toBe('water*3, land*5\nwater*8');
    expect(encodeMaskText(grid(3, 1, [3, 0, 3]), CLASSES)).toBe('low vegetation*1, others*1, low vegetation*1');
  });

  it('refuses a value with no class, the ignore label included', () => {
    expect(() => encodeMaskText(grid(2, 1, [0, IGNORE_LABEL]), CLASSES)).toThrow(LabelOutOfRangeError);
    expect(() => encodeMaskText(grid(2, 1, [0, 4]), CLASSES)).toThrow('label 4 is not one of the 4 classes');
  });
});

describe('mask text properties', () => {
  const gridsWithClasses = fc
    .record({ width: fc.integer({ min: 1, max: 12 }), height: fc.integer({ min: 1, max: 12 }), classCount: fc.integer({ min: 1, max: 5 }) })
    .chain(({ width, height, classCount }) =>
      fc.record({
        // Few distinct values make long runs as well as short ones.
        grid: fc.uint8Array({ minLength: width * height, maxLength: width * height, max: classCount - 1 }).map((data) => grid(width, height, [...data])),
        classes: fc.constant(Array.from({ length: classCount }, (_, i) => `class ${i}`)),
      }),
    );

  it('reads back what it writes, with no two equal neighbouring cells', () => {
    fc.assert(
      fc.property(gridsWithClasses, ({ grid: g, classes }) => {
        const text = encodeMaskText(g, classes);
        expect(parseMaskText(text, classes)).toEqual({ kind: 'grid', grid: g });
        for (const line of text.split('\n')) {
          const labels = line.split(', ').map((cell) => cell.split('*')[0]);
          labels.slice(1).forEach((label, i) => expect(label).not.toBe(labels[i]));
        }
      }),
    );
  });

  it('never throws on arbitrary text', () => {
    const maskish = fc
      .array(fc.constantFrom('water', 'land', 'others', 'Tree', '*', '*3', '3', '0', ', ', ',', '\n', '\r\n', ' ', '|', '99999999999'), { maxLength: 40 })
      .map((tokens) => tokens.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), maskish), (text) => {
        const decoded = decodeMaskText(text, CLASSES, { width: 5, height: 3 });
        if (decoded.kind === 'unparseable') expect(decoded.reason).not.toBe('');
        else expect(decoded.mask.data).toHaveLength(15);
      }),
    );
  });
});
