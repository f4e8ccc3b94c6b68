import { describe, expect, it } from 'vitest';
import { describeBlobStoreBehaviour } from '../test-support/blob-store-behaviour';
import { InMemoryBlobStore } from './index';

describeBlobStoreBehaviour('InMemoryBlobStore', () => new InMemoryBlobStore({ ttlSeconds: 60, maxBytes: 1024 }));

describe('InMemoryBlobStore expiry', () => {
  it('expires blobs after the TTL and refreshes it on put and touch', async () => {
    let now = 1_000_000;
    const store = new InMemoryBlobStore({ ttlSeconds: 10, maxBytes: 1024 }, () => now);
    const { sha256 } = await store.put(Buffer.from('x'), 'image/png');
    now += 9_000;
    expect((await store.put(Buffer.from('x'), 'image/png')).created).toBe(false);
    now += 9_000;
    expect(await store.has(sha256)).toBe(true);
    expect(await store.touch(sha256, 1)).toBe(true);
    now += 1_000;
    expect(await store.get(sha256)).toBeUndefined();
    expect(store.size).toBe(0);
    expect((await store.put(Buffer.from('x'), 'image/png')).created).toBe(true);
  });

  it('hands out copies, so callers cannot change stored bytes', async () => {
    const store = new InMemoryBlobStore({ ttlSeconds: 10, maxBytes: 1024 });
    const input = Buffer.from('abc');
    const { sha256 } = await store.put(input, 'image/png');
    input[0] = 0;
    const first = await store.get(sha256);
    first!.bytes[1] = 0;
    expect((await store.get(sha256))!.bytes.toString()).toBe('abc');
  });
});
