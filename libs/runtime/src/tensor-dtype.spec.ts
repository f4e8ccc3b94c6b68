import { describe, expect, it } from 'vitest';
import { floatToHalfBits, fromHalf, halfBitsToFloat, toHalf } from './tensor-dtype';

describe('float16 conversion', () => {
  it('rounds to the nearest even half, as numpy astype(float16) does', () => {
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(floatToHalfBits(-2)).toBe(0xc000);
    expect(floatToHalfBits(65504)).toBe(0x7bff);
    expect(floatToHalfBits(70000)).toBe(0x7c00);
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // halfway, even mantissa stays
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway, odd mantissa rounds up
    expect(floatToHalfBits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(Number.isNaN(halfBitsToFloat(floatToHalfBits(NaN)))).toBe(true);
  });

  it('round-trips every finite half exactly', () => {
    const bits = Uint16Array.from({ length: 0x7c00 }, (_, i) => i);
    expect([...toHalf(fromHalf(bits))]).toEqual([...bits]);
  });
});
