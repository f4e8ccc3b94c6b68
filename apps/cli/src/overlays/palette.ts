/** An 8-bit sRGB colour. */
export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** Outline (and label tab) colour of boxes: yellow, which stands out on vegetation, water and roofs alike. */
export const BOX_COLOUR: Rgb = { r: 255, g: 225, b: 25 };

/** Colour laid over changed pixels. */
export const CHANGE_COLOUR: Rgb = { r: 255, g: 0, b: 0 };

/**
 * Class colours, in order (Sasha Trubetskoy's 20 distinct colours). A request may name up to 64 classes, so
 * colours repeat from the 21st class on.
 */
export const CLASS_PALETTE: readonly Rgb[] = Object.freeze(
  [
    '#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#bcf60c', '#fabebe', '#008080',
    '#e6beff', '#9a6324', '#fffac8', '#800000', '#aaffc3', '#808000', '#ffd8b1', '#000075', '#808080', '#ffe119',
  ].map(parseHex),
);

function parseHex(hex: string): Rgb {
  const value = Number.parseInt(hex.slice(1), 16);
  return { r: value >> 16, g: (value >> 8) & 0xff, b: value & 0xff };
}

/** `#rrggbb`. */
export function toHex({ r, g, b }: Rgb): string {
  return `#${[r, g, b].map((channel) => channel.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * A colour per class index of a mask's class list: the classes in `background` get none (they stay
 * transparent), the others take the palette in order.
 */
export function classColours(classes: readonly string[], background: readonly string[]): Map<number, Rgb> {
  const colours = new Map<number, Rgb>();
  for (const [index, name] of classes.entries()) {
    if (background.includes(name)) continue;
    colours.set(index, CLASS_PALETTE[colours.size % CLASS_PALETTE.length]);
  }
  return colours;
}
