import { describe, expect, it } from 'vitest';
import { CLASS_PALETTE, classColours, toHex } from './palette';

describe('overlay palette', () => {
  it('gives each non-background class the next palette colour, by class index', () => {
    const colours = classColours(['others', 'building', 'water', 'road'], ['others']);
    expect([...colours.keys()]).toEqual([1, 2, 3]);
    expect([1, 2, 3].map((index) => colours.get(index))).toEqual(CLASS_PALETTE.slice(0, 3));
    expect(toHex(colours.get(1)!)).toBe('#e6194b');
  });

  it('repeats the palette past its last colour', () => {
    const names = Array.from({ length: CLASS_PALETTE.length + 2 }, (_, i) => `class-${i}`);
    expect(classColours(names, []).get(CLASS_PALETTE.length)).toEqual(CLASS_PALETTE[0]);
  });
});
