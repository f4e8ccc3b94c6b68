/** The encoded formats the runtime decodes. */
export type SupportedImageFormat = 'png' | 'jpeg' | 'webp' | 'tiff';

/** Formats recognised only to give a clear error message; they are never decoded. */
export type UnsupportedImageFormat = 'gif' | 'bmp' | 'heic' | 'avif' | 'jpeg2000' | 'jpegxl' | 'psd' | 'pdf' | 'svg';

const LABELS: Record<SupportedImageFormat | UnsupportedImageFormat, string> = {
  png: 'PNG',
  jpeg: 'JPEG',
  webp: 'WebP',
  tiff: 'TIFF',
  gif: 'GIF',
  bmp: 'BMP',
  heic: 'HEIC/HEIF',
  avif: 'AVIF',
  jpeg2000: 'JPEG 2000',
  jpegxl: 'JPEG XL',
  psd: 'Photoshop (PSD)',
  pdf: 'PDF',
  svg: 'SVG',
};

/** The name of a format as people write it, e.g. `'WebP'`, `'JPEG 2000'`. */
export function imageFormatLabel(format: SupportedImageFormat | UnsupportedImageFormat): string {
  return LABELS[format];
}

/** Whether `bytes` starts with `signature`; `null` in the signature matches any byte. */
function startsWith(bytes: Uint8Array, signature: ReadonlyArray<number | null>, offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  return signature.every((b, i) => b === null || bytes[offset + i] === b);
}

function ascii(text: string): number[] {
  return Array.from(text, (c) => c.charCodeAt(0));
}

/**
 * Identifies a supported format from its magic bytes (the file extension and any declared content type
 * are never trusted). TIFF covers classic TIFF in both byte orders (`II*\0`, `MM\0*`) and BigTIFF.
 * Returns `null` for anything else.
 */
export function sniffImageFormat(bytes: Uint8Array): SupportedImageFormat | null {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'webp';
  if (
    startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) ||
    startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]) ||
    startsWith(bytes, [0x49, 0x49, 0x2b, 0x00]) ||
    startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2b])
  ) {
    return 'tiff';
  }
  return null;
}

const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1']);
const AVIF_BRANDS = new Set(['avif', 'avis']);

/**
 * Identifies well-known image (or image-like) formats that the runtime does not decode, so that the error
 * can name them. Returns `null` when the bytes are not recognised at all.
 */
export function sniffUnsupportedImageFormat(bytes: Uint8Array): UnsupportedImageFormat | null {
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'gif';
  if (startsWith(bytes, ascii('%PDF-'))) return 'pdf';
  if (startsWith(bytes, ascii('8BPS'))) return 'psd';
  if (
    startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]) ||
    startsWith(bytes, [0xff, 0x4f, 0xff, 0x51])
  ) {
    return 'jpeg2000';
  }
  if (
    startsWith(bytes, [0xff, 0x0a]) ||
    startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a])
  ) {
    return 'jpegxl';
  }
  // ISO base media file: a box size, then 'ftyp' and the major brand.
  if (startsWith(bytes, ascii('ftyp'), 4) && bytes.length >= 12) {
    const brand = String.fromCharCode(...bytes.subarray(8, 12));
    if (AVIF_BRANDS.has(brand)) return 'avif';
    if (HEIF_BRANDS.has(brand)) return 'heic';
  }
  // BMP: 'BM' plus a 14-byte file header whose reserved fields are zero (two bytes alone are too weak).
  if (startsWith(bytes, ascii('BM')) && startsWith(bytes, [0, 0, 0, 0], 6)) return 'bmp';
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 1024)).trimStart();
  if ((head.startsWith('<?xml') || head.startsWith('<svg')) && head.includes('<svg')) return 'svg';
  return null;
}
