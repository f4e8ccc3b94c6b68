/**
 * RSUniVLM's box text (region expert: `[VG]` answers, `[REF]` queries).
 *
 * A box is `[x1, y1, x2, y2]`: four numbers in percent (0–100) of the image width and height, separated by
 * commas, in square brackets. An answer may hold several boxes and words around them, e.g.
 * `there are two: [12, 30, 40, 55], [60, 10, 80, 20].`
 *
 * Reading, as RSUniVLM's own demo reads it:
 * - every `[...]` group is a candidate; one whose comma-separated values are all unsigned decimal numbers
 *   (`12`, `12.5`, `.5`, `12.`) and at least four is a box, cut at four values; any other group (fewer
 *   than four values, a word, a sign, a tag such as `[VG]`) is not a box and is skipped;
 * - a value over 100 is read as 100 (the model overshooting the edge);
 * - a group whose box has no area (x1 = x2 or y1 = y2, after that cut) is not a box either;
 * - text with no box at all is unparseable.
 *
 * Writing: values rounded to `decimals` places (default 0: the model was trained on whole percents),
 * trailing zeros dropped, boxes separated by `, `. Reading what was written gives each value back within
 * 0.5 × 10^-decimals (exactly, for values that already have at most `decimals` places).
 */
import type { PercentBox } from './box.types';
import { InvalidBoxError } from './errors';
import { unparseable, type Unparseable } from './unparseable';

export type BoxesParse = { kind: 'boxes'; boxes: PercentBox[] } | Unparseable;

export interface EncodeBoxesOptions {
  /** Decimal places written per value, 0–6. Default 0. */
  decimals?: number;
}

const BRACKET_GROUP = /\[([^[\]]*)\]/g;
const UNSIGNED_DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)$/;
const MAX_DECIMALS = 6;

/** Reads every box in a model answer. Never throws. */
export function parseBoxesText(text: string): BoxesParse {
  if (typeof text !== 'string') return unparseable('the answer is not text');
  const boxes: PercentBox[] = [];
  let groups = 0;
  for (const match of text.matchAll(BRACKET_GROUP)) {
    groups++;
    const box = boxFromGroup(match[1]);
    if (box) boxes.push(box);
  }
  if (boxes.length > 0) return { kind: 'boxes', boxes };
  return unparseable(
    groups === 0 ? 'no [x1, y1, x2, y2] box in the answer' : `none of the ${groups} bracketed group(s) holds four numbers`,
  );
}

/** Writes boxes the way RSUniVLM reads and writes them; `''` for no boxes. */
export function encodeBoxesText(boxes: readonly PercentBox[], options: EncodeBoxesOptions = {}): string {
  const decimals = options.decimals ?? 0;
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > MAX_DECIMALS) {
    throw new RangeError(`decimals must be an integer from 0 to ${MAX_DECIMALS}, got ${decimals}`);
  }
  return boxes
    .map((box) => `[${[box.x1, box.y1, box.x2, box.y2].map((value) => formatPercent(value, decimals)).join(', ')}]`)
    .join(', ');
}

function boxFromGroup(group: string): PercentBox | undefined {
  const parts = group.split(',').map((part) => part.trim());
  if (parts.length < 4 || !parts.every((part) => UNSIGNED_DECIMAL.test(part))) return undefined;
  const [x1, y1, x2, y2] = parts.slice(0, 4).map((part) => Math.min(Number(part), 100));
  // No area, no box (a model can write `[47, 30, 47, 38]`); reversed corners are ordered where boxes are converted.
  if (x1 === x2 || y1 === y2) return undefined;
  return { unit: 'percent', x1, y1, x2, y2 };
}

function formatPercent(value: number, decimals: number): string {
  if (!Number.isFinite(value) || value < 0 || value > 100) {
    throw new InvalidBoxError(`a percent box value must be within 0–100, got ${value}`);
  }
  const fixed = value.toFixed(decimals);
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}
