import { describe, expect, it } from 'vitest';
import { crsDefinition } from './crs-catalogue';

describe('crsDefinition', () => {
  it('names WGS 84 and Web Mercator', () => {
    expect(crsDefinition(4326)?.name).toBe('WGS 84');
    expect(crsDefinition(3857)?.name).toBe('WGS 84 / Pseudo-Mercator');
  });

  it('generates every UTM zone of each family, and only those', () => {
    expect(crsDefinition(32601)).toMatchObject({ name: 'WGS 84 / UTM zone 1N', proj4: expect.stringContaining('+zone=1 +datum=WGS84') });
    expect(crsDefinition(32660)?.name).toBe('WGS 84 / UTM zone 60N');
    expect(crsDefinition(32701)).toMatchObject({ name: 'WGS 84 / UTM zone 1S', proj4: expect.stringContaining('+zone=1 +south') });
    expect(crsDefinition(32760)?.name).toBe('WGS 84 / UTM zone 60S');
    expect(crsDefinition(25828)?.name).toBe('ETRS89 / UTM zone 28N');
    expect(crsDefinition(25838)?.name).toBe('ETRS89 / UTM zone 38N');
    expect(crsDefinition(26901)?.name).toBe('NAD83 / UTM zone 1N');
    expect(crsDefinition(26923)?.name).toBe('NAD83 / UTM zone 23N');
    for (const code of [32600, 32661, 32700, 32761, 25827, 25839, 26900, 26924, 2154, 27700, 32767, 0, -1, 32633.5]) {
      expect(crsDefinition(code)).toBeUndefined();
    }
  });

  it('has a definition for each of the 156 supported UTM codes', () => {
    const codes = [
      ...range(32601, 32660),
      ...range(32701, 32760),
      ...range(25828, 25838),
      ...range(26901, 26923),
    ];
    expect(codes.filter((code) => crsDefinition(code)?.epsg === code)).toHaveLength(60 + 60 + 11 + 23);
  });
});

function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}
