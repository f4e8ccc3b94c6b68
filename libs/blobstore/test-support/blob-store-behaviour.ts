import { describe, expect, it } from 'vitest';
import { BlobTooLargeError, InvalidBlobError, InvalidSha256Error, sha256Hex, type BlobStore } from '../src';

/** Every byte value, so that binary data survives the round trip. */
export const BINARY = Uint8Array.from({ length: 512 }, (_, i) => i % 256);

/** Behaviour every BlobStore must have; `store()` returns a store with maxBytes 1024 and a fresh namespace. */
export function describeBlobStoreBehaviour(name: string, store: () => BlobStore): void {
  describe(`${name}: BlobStore behaviour`, () => {
    it('stores bytes under their sha256 and returns them unchanged', async () => {
      const s = store();
      const ref = await s.put(BINARY, 'image/png');
      expect(ref).toEqual({ sha256: sha256Hex(BINARY), byteLength: 512, mediaType: 'image/png', created: true });
      const blob = await s.get(ref.sha256);
      expect(blob?.mediaType).toBe('image/png');
      expect(Buffer.compare(blob!.bytes, Buffer.from(BINARY))).toBe(0);
      expect(await s.has(ref.sha256)).toBe(true);
    });

    it('writes the same bytes once: the second put reports created false and keeps the first media type', async () => {
      const s = store();
      const bytes = Buffer.from('same bytes twice');
      expect((await s.put(bytes, 'image/jpeg')).created).toBe(true);
      expect(await s.put(new Uint8Array(bytes), 'image/webp')).toMatchObject({ created: false, mediaType: 'image/jpeg', sha256: sha256Hex(bytes) });
      expect((await s.get(sha256Hex(bytes)))?.mediaType).toBe('image/jpeg');
    });

    it('accepts a Uint8Array view into a larger buffer', async () => {
      const s = store();
      const backing = Buffer.from('xxhelloxx');
      const view = new Uint8Array(backing.buffer, backing.byteOffset + 2, 5);
      const ref = await s.put(view, 'image/tiff');
      expect(ref.sha256).toBe(sha256Hex(Buffer.from('hello')));
      expect((await s.get(ref.sha256))?.bytes.toString()).toBe('hello');
    });

    it('says absent for an unknown digest', async () => {
      const s = store();
      const unknown = sha256Hex(Buffer.from(`never stored ${Math.random()}`));
      expect(await s.get(unknown)).toBeUndefined();
      expect(await s.has(unknown)).toBe(false);
      expect(await s.touch(unknown)).toBe(false);
      expect(await s.delete(unknown)).toBe(false);
    });

    it('deletes', async () => {
      const s = store();
      const { sha256 } = await s.put(Buffer.from('to delete'), 'image/png');
      expect(await s.delete(sha256)).toBe(true);
      expect(await s.has(sha256)).toBe(false);
    });

    it('rejects malformed digests before touching storage', async () => {
      const s = store();
      for (const bad of ['', 'abc', 'A'.repeat(64), `${'0'.repeat(63)}g`, `${'0'.repeat(64)}:x`]) {
        await expect(s.get(bad)).rejects.toThrow(InvalidSha256Error);
        await expect(s.has(bad)).rejects.toThrow(InvalidSha256Error);
        await expect(s.touch(bad)).rejects.toThrow(InvalidSha256Error);
        await expect(s.delete(bad)).rejects.toThrow(InvalidSha256Error);
      }
    });

    it('rejects empty, oversized and badly typed blobs', async () => {
      const s = store();
      await expect(s.put(new Uint8Array(0), 'image/png')).rejects.toThrow(InvalidBlobError);
      const tooLarge = s.put(new Uint8Array(1025), 'image/png');
      await expect(tooLarge).rejects.toThrow(BlobTooLargeError);
      await expect(tooLarge).rejects.toMatchObject({ byteLength: 1025, maxBytes: 1024 });
      await expect(s.put(new Uint8Array(1024), 'image/png')).resolves.toMatchObject({ byteLength: 1024 });
      await expect(s.put(Buffer.from('x'), 'png')).rejects.toThrow(/invalid media type/);
      await expect(s.touch(sha256Hex(Buffer.from('x')), 0)).rejects.toThrow(RangeError);
    });
  });
}
