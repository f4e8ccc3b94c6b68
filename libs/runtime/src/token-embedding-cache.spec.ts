import { describe, expect, it } from 'vitest';
import { TokenEmbeddingCache } from './token-embedding-cache';

describe('TokenEmbeddingCache', () => {
  it('returns rows only when every token is cached, in token order', () => {
    const cache = new TokenEmbeddingCache(4, 2);
    cache.store([7, 9], Float32Array.of(1, 2, 3, 4));
    expect(Array.from(cache.lookup([9, 7, 9]) ?? [])).toEqual([3, 4, 1, 2, 3, 4]);
    expect(cache.lookup([7, 8])).toBeUndefined();
  });

  it('evicts the least recently used row at capacity', () => {
    const cache = new TokenEmbeddingCache(2, 1);
    cache.store([1, 2], Float32Array.of(10, 20));
    cache.lookup([1]);
    cache.store([3], Float32Array.of(30));
    expect(cache.lookup([2])).toBeUndefined();
    expect(Array.from(cache.lookup([1, 3]) ?? [])).toEqual([10, 30]);
  });

  it('does nothing with capacity 0', () => {
    const cache = new TokenEmbeddingCache(0, 1);
    cache.store([1], Float32Array.of(1));
    expect(cache.lookup([1])).toBeUndefined();
  });
});
