import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error';
import { assertJsonDepth } from './json-depth';

const depthOf = (text: string, max = 3): 'ok' | string => {
  try {
    assertJsonDepth(Buffer.from(text), max);
    return 'ok';
  } catch (error) {
    return (error as GatewayError).code;
  }
};

describe('assertJsonDepth', () => {
  it('counts arrays and objects, not brackets inside strings (escaped quotes included)', () => {
    expect(depthOf('{"a":[{"b":1}]}')).toBe('ok');
    expect(depthOf('{"a":[{"b":[1]}]}')).toBe('invalid_json');
    expect(depthOf('[[[ ]]]')).toBe('ok');
    expect(depthOf('[[[[ ]]]]')).toBe('invalid_json');
    expect(depthOf('{"s":"[[[[[[[[","t":"\\"[[[[{{{{"}')).toBe('ok');
    expect(depthOf('{"s":"\\\\"}')).toBe('ok');
    expect(depthOf('{"s":"\\\\",  "x":[[[1]]]}')).toBe('invalid_json');
  });

  it('throws a 400 GatewayError naming the limit', () => {
    expect(() => assertJsonDepth(Buffer.from('['.repeat(40)), 32)).toThrow(/deeper than 32 levels/);
    try {
      assertJsonDepth(Buffer.from('['.repeat(40)), 32);
    } catch (error) {
      expect(error).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).status).toBe(400);
    }
  });
});
