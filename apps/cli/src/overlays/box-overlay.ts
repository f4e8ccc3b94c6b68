import { decodeRgb, encodePng, renderText } from './image-codec';
import { BOX_COLOUR, type Rgb } from './palette';
import { blendOver, RgbaLayer, type PixelBox, type RgbImage, type PixelSpan } from './raster';

/** A box to draw, with an optional label (grounding: the phrase it was found for). */
export interface OverlayBox {
  box: PixelBox;
  label?: string;
}

export interface BoxOverlayOptions {
  /** Outline and label tab colour. Default BOX_COLOUR. */
  colour?: Rgb;
  /** Outline width in pixels, drawn inside the box. Default 2. */
  lineWidth?: number;
}

const LABEL_TEXT: Rgb = { r: 0, g: 0, b: 0 };
const LABEL_PADDING = 2;

/**
 * The boxes' outlines over the image; a labelled box gets a tab with its label above its top-left corner, or
 * below its bottom-left corner when there is no room above, or none when there is no room either. Pixels
 * inside a box keep the image's colour.
 */
export async function paintBoxes(image: RgbImage, boxes: readonly OverlayBox[], options: BoxOverlayOptions = {}): Promise<RgbImage> {
  const colour = options.colour ?? BOX_COLOUR;
  const layer = new RgbaLayer(image.width, image.height);
  const labelled: { span: PixelSpan; label: string }[] = [];
  for (const { box, label } of boxes) {
    const span = layer.strokeBox(box, colour, options.lineWidth ?? 2);
    if (span !== undefined && label !== undefined && label !== '') labelled.push({ span, label });
  }
  const fontPx = Math.min(20, Math.max(10, Math.round(image.height / 24)));
  const texts = new Map<string, RgbaLayer | undefined>();
  const placed: { text: RgbaLayer; left: number; top: number }[] = [];
  for (const { span, label } of labelled) {
    if (!texts.has(label)) texts.set(label, await renderText(label, fontPx, LABEL_TEXT));
    const text = texts.get(label);
    if (text === undefined) continue;
    const tabHeight = text.height + 2 * LABEL_PADDING;
    // Above the box, else below it; never over it, so the label cannot hide what the box marks.
    const tabTop = span.top - tabHeight >= 0 ? span.top - tabHeight : span.bottom + tabHeight <= image.height ? span.bottom : undefined;
    if (tabTop === undefined) continue;
    layer.fillRect(span.left, tabTop, span.left + text.width + 2 * LABEL_PADDING, tabTop + tabHeight, colour);
    placed.push({ text, left: span.left + LABEL_PADDING, top: tabTop + LABEL_PADDING });
  }
  let out = blendOver(image, layer);
  for (const { text, left, top } of placed) out = blendOver(out, text, left, top);
  return out;
}

/** An encoded image with the boxes drawn over it, as PNG. */
export async function drawBoxOverlay(image: Uint8Array, boxes: readonly OverlayBox[], options: BoxOverlayOptions = {}): Promise<Buffer> {
  return encodePng(await paintBoxes(await decodeRgb(image), boxes, options));
}
