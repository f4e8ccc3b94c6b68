import sharp from 'sharp';
import { toHex, type Rgb } from './palette';
import { RgbaLayer, type LabelMask, type RgbImage } from './raster';

/**
 * An encoded image (PNG, JPEG, WebP, TIFF: what the gateway accepts) as 8-bit RGB, in stored orientation
 * (EXIF rotation is not applied: the gateway's pixel coordinates are of the stored pixels). Alpha is dropped.
 */
export async function decodeRgb(bytes: Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** RGB pixels as a PNG file. */
export function encodePng(image: RgbImage): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

/** The gateway's single-channel label PNG (pixel = class index) as a label mask. */
export async function decodeLabelMaskPng(png: Uint8Array): Promise<LabelMask> {
  const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

const MARKUP_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * `text` in `colour` on a transparent layer, in a `sizePx` font (Pango through sharp, the system's sans font).
 * Undefined when no text can be rendered here (no fonts): a label is decoration, never worth failing for.
 */
export async function renderText(text: string, sizePx: number, colour: Rgb): Promise<RgbaLayer | undefined> {
  const markup = `<span foreground="${toHex(colour)}">${text.replace(/[&<>"']/g, (char) => MARKUP_ESCAPES[char])}</span>`;
  try {
    const { data, info } = await sharp({ text: { text: markup, font: `sans ${sizePx}`, dpi: 72, rgba: true } })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const layer = new RgbaLayer(info.width, info.height);
    layer.data.set(data.subarray(0, layer.data.length));
    return layer;
  } catch {
    return undefined;
  }
}
