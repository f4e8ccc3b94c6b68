import type { Rgb } from './palette';

/** 8-bit RGB pixels, row-major, 3 bytes a pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** One byte a pixel, row-major: a mask's class index (255 = ignore), as in the gateway's label PNG. */
export interface LabelMask {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A box in pixels, continuous coordinates: [x1, y1, x2, y2], x2 > x1 and y2 > y1 (the gateway's `boxPx`). */
export type PixelBox = readonly [number, number, number, number];

/** The whole pixels a box covers, as half-open ranges clipped to the image; at least one pixel wide and high. */
export interface PixelSpan {
  left: number;
  top: number;
  /** Exclusive. */
  right: number;
  /** Exclusive. */
  bottom: number;
}

/** The pixels of a continuous box: column floor(x1) up to ceil(x2), clipped; undefined when nothing is inside the image. */
export function pixelSpan(box: PixelBox, width: number, height: number): PixelSpan | undefined {
  const [x1, y1, x2, y2] = box;
  const left = Math.max(0, Math.floor(x1));
  const top = Math.max(0, Math.floor(y1));
  const right = Math.min(width, Math.max(Math.ceil(x2), Math.floor(x1) + 1));
  const bottom = Math.min(height, Math.max(Math.ceil(y2), Math.floor(y1) + 1));
  return right > left && bottom > top ? { left, top, right, bottom } : undefined;
}

/** A transparent RGBA layer to paint on, then lay over an image with `blendOver`. */
export class RgbaLayer {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height * 4);
  }

  /** Paints the half-open pixel rectangle [left, right) × [top, bottom), clipped to the layer. */
  fillRect(left: number, top: number, right: number, bottom: number, colour: Rgb, alpha = 255): void {
    const x0 = Math.max(0, left);
    const x1 = Math.min(this.width, right);
    for (let y = Math.max(0, top); y < Math.min(this.height, bottom); y++) {
      for (let x = x0; x < x1; x++) this.set(y * this.width + x, colour, alpha);
    }
  }

  /** A box's outline, `lineWidth` pixels drawn inwards from its edges so that it never covers what is outside. */
  strokeBox(box: PixelBox, colour: Rgb, lineWidth = 2): PixelSpan | undefined {
    const span = pixelSpan(box, this.width, this.height);
    if (span === undefined) return undefined;
    const { left, top, right, bottom } = span;
    this.fillRect(left, top, right, top + lineWidth, colour);
    this.fillRect(left, bottom - lineWidth, right, bottom, colour);
    this.fillRect(left, top, left + lineWidth, bottom, colour);
    this.fillRect(right - lineWidth, top, right, bottom, colour);
    return span;
  }

  /** Paints every pixel whose label has a colour; the others stay transparent. OverlaySizeError unless the mask is the layer's size. */
  paintLabels(mask: LabelMask, colours: ReadonlyMap<number, Rgb>, alpha: number): void {
    if (mask.width !== this.width || mask.height !== this.height) {
      throw new OverlaySizeError(`the mask is ${mask.width}×${mask.height} but the image is ${this.width}×${this.height}`);
    }
    for (let i = 0; i < mask.data.length; i++) {
      const colour = colours.get(mask.data[i]);
      if (colour !== undefined) this.set(i, colour, alpha);
    }
  }

  private set(pixel: number, colour: Rgb, alpha: number): void {
    const at = pixel * 4;
    this.data[at] = colour.r;
    this.data[at + 1] = colour.g;
    this.data[at + 2] = colour.b;
    this.data[at + 3] = alpha;
  }
}

/** An image and the pixels drawn over it do not have the same size. */
export class OverlaySizeError extends Error {
  readonly code = 'overlay_size_mismatch';
}

/**
 * `layer` laid over `image` ("over" compositing, straight alpha) with its top-left corner at (left, top);
 * what falls outside the image is dropped. Returns a new image.
 */
export function blendOver(image: RgbImage, layer: RgbaLayer, left = 0, top = 0): RgbImage {
  const out = new Uint8Array(image.data);
  for (let y = Math.max(0, -top); y < layer.height && y + top < image.height; y++) {
    for (let x = Math.max(0, -left); x < layer.width && x + left < image.width; x++) {
      const from = (y * layer.width + x) * 4;
      const alpha = layer.data[from + 3];
      if (alpha === 0) continue;
      const to = ((y + top) * image.width + x + left) * 3;
      for (let c = 0; c < 3; c++) out[to + c] = Math.round((layer.data[from + c] * alpha + out[to + c] * (255 - alpha)) / 255);
    }
  }
  return { width: image.width, height: image.height, data: out };
}

/** `left` and `right` next to each other: width = both widths, height = the taller one (black below the shorter). */
export function sideBySide(left: RgbImage, right: RgbImage): RgbImage {
  const width = left.width + right.width;
  const height = Math.max(left.height, right.height);
  const data = new Uint8Array(width * height * 3);
  for (const [image, offset] of [[left, 0], [right, left.width]] as const) {
    for (let y = 0; y < image.height; y++) {
      data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), (y * width + offset) * 3);
    }
  }
  return { width, height, data };
}
