import { describe, expect, it } from 'vitest';
import { imageFormatLabel, sniffImageFormat, sniffUnsupportedImageFormat } from './image-format';

const bytes = (...parts: (number[] | string)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? Array.from(p, (c) => c.charCodeAt(0)) : p)));

describe('sniffImageFormat', () => {
  it.each([
    ['png', bytes([0x89], 'PNG', [0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])],
    ['jpeg', bytes([0xff, 0xd8, 0xff, 0xe0, 0, 0x10])],
    ['webp', bytes('RIFF', [0x24, 0, 0, 0], 'WEBPVP8L')],
    ['tiff', bytes('II', [0x2a, 0, 8, 0, 0, 0])],
    ['tiff', bytes('MM', [0, 0x2a, 0, 0, 0, 8])],
    ['tiff', bytes('II', [0x2b, 0, 8, 0, 0, 0])],
    ['tiff', bytes('MM', [0, 0x2b, 0, 8, 0, 0])],
  ])('recognises %s from its magic bytes', (format, input) => {
    expect(sniffImageFormat(input)).toBe(format);
  });

  it('returns null for other or too-short input', () => {
    expect(sniffImageFormat(bytes('RIFF', [0, 0, 0, 0], 'WAVEfmt '))).toBeNull();
    expect(sniffImageFormat(bytes([0x89], 'PN'))).toBeNull();
    expect(sniffImageFormat(bytes('II'))).toBeNull();
    expect(sniffImageFormat(bytes('hello world'))).toBeNull();
    expect(sniffImageFormat(new Uint8Array(0))).toBeNull();
  });
});

describe('sniffUnsupportedImageFormat', () => {
  it.each([
    ['gif', bytes('GIF89a', [1, 0, 1, 0])],
    ['gif', bytes('GIF87a', [1, 0, 1, 0])],
    ['pdf', bytes('%PDF-1.7\n')],
    ['bmp', bytes('BM', [0x46, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0])],
    ['avif', bytes([0, 0, 0, 0x1c], 'ftypavif', [0, 0, 0, 0])],
    ['heic', bytes([0, 0, 0, 0x18], 'ftypheic', [0, 0, 0, 0])],
    ['jpeg2000', bytes([0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a])],
    ['psd', bytes('8BPS', [0, 1])],
    ['svg', bytes('  <?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>')],
  ])('recognises %s', (format, input) => {
    expect(sniffUnsupportedImageFormat(input)).toBe(format);
  });

  it('returns null for unknown bytes and for supported formats', () => {
    expect(sniffUnsupportedImageFormat(bytes('just some text'))).toBeNull();
    expect(sniffUnsupportedImageFormat(bytes([0xff, 0xd8, 0xff, 0xe0]))).toBeNull();
    expect(sniffUnsupportedImageFormat(bytes('BM', [1, 2, 3, 4, 5, 6, 7]))).toBeNull();
  });

  it('has readable labels', () => {
    expect(imageFormatLabel('gif')).toBe('GIF');
    expect(imageFormatLabel('webp')).toBe('WebP');
  });
});
