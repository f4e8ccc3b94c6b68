/**
 * RSUniVLM's mask text (pixel expert, `[SEG]` answers): a label grid written row by row, each row as run-length
 * cells `label*count` separated by `, `, rows separated by line breaks, e.g. `others*3, water*5\nwater*8` is an
 * 8 × 2 grid. `others` is the usual background class. The grid's size is the text's: its width is each row's
 * total count, its height the number of rows. It is then resized to the image (resizeNearest).
 *
 * Reading, as RSUniVLM's own demo reads it, with a little more tolerance and a reason for every failure:
 * - labels are matched to the class list case-insensitively (the demo lower-cases the answer), with
 *   surrounding whitespace trimmed and inner whitespace runs read as one space; spaces around `*` and `,` and
 *   `\r\n` line breaks are accepted, and blank lines are skipped (reasons count rows without them);
 * - a label may hold spaces (`low vegetation`); its count is after the last `*` of the cell;
 * - a count is a positive integer in plain digits;
 * - every row must cover the same number of cells, and the grid at most MAX_MASK_GRID_CELLS cells;
 * - anything else (an unknown label, a cell without `*`, an empty cell, rows of different widths) makes the
 *   whole answer unparseable: a mask cut short by the token limit is not guessed at.
 *
 * Writing: each row's equal neighbours merged into one cell, class names as given (trimmed).
 */
import { classIndexByKey, classKey } from './class-list';
import { LabelOutOfRangeError } from './errors';
import type { ImageSize } from './image-size';
import { assertLabelMask, resizeNearest, type LabelMask } from './label-mask';
import { quoted, unparseable, type Unparseable } from './unparseable';

/** Largest grid read from text (a 1024 × 1024 grid): bounds the memory a runaway answer can ask for. */
export const MAX_MASK_GRID_CELLS = 1 << 20;

export type MaskGridParse = { kind: 'grid'; grid: LabelMask } | Unparseable;
export type MaskDecode = { kind: 'mask'; grid: LabelMask; mask: LabelMask } | Unparseable;

const DIGITS = /^\d+$/;

/** Reads a mask answer into its label grid (values: indices into `classes`). Never throws on the text. */
export function parseMaskText(text: string, classes: readonly string[]): MaskGridParse {
  const indexByKey = classIndexByKey(classes);
  if (typeof text !== 'string') return unparseable('the answer is not text');
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (lines.length === 0) return unparseable('no rows in the mask answer');
  const rows: number[][] = [];
  let width = 0;
  for (const [index, line] of lines.entries()) {
    const rowName = `row ${index + 1}`;
    const row = parseRow(line, indexByKey);
    if (typeof row === 'string') return unparseable(`${rowName}: ${row}`);
    const { runs, covered } = row;
    if (index === 0) width = covered;
    else if (covered !== width) return unparseable(`${rowName} covers ${covered} cells, row 1 covers ${width}`);
    if (width * (index + 1) > MAX_MASK_GRID_CELLS) return unparseable(`the grid is larger than ${MAX_MASK_GRID_CELLS} cells`);
    rows.push(runs);
  }
  const data = new Uint8Array(width * rows.length);
  rows.forEach((row, y) => {
    let x = y * width;
    for (let i = 0; i < row.length; i += 2) {
      data.fill(row[i], x, x + row[i + 1]);
      x += row[i + 1];
    }
  });
  return { kind: 'grid', grid: { width, height: rows.length, data } };
}

/** Reads a mask answer and resizes its grid to the image (nearest neighbour). Never throws on the text. */
export function decodeMaskText(text: string, classes: readonly string[], size: ImageSize): MaskDecode {
  const parsed = parseMaskText(text, classes);
  if (parsed.kind === 'unparseable') return parsed;
  return { kind: 'mask', grid: parsed.grid, mask: resizeNearest(parsed.grid, size) };
}

/** Writes a label grid as mask text. Throws LabelOutOfRangeError for a value with no class (IGNORE_LABEL included). */
export function encodeMaskText(grid: LabelMask, classes: readonly string[]): string {
  classIndexByKey(classes);
  assertLabelMask(grid);
  const names = classes.map((name) => name.trim());
  const lines: string[] = [];
  for (let y = 0; y < grid.height; y++) {
    const cells: string[] = [];
    let x = y * grid.width;
    const end = x + grid.width;
    while (x < end) {
      const label = grid.data[x];
      if (label >= names.length) throw new LabelOutOfRangeError(label, names.length);
      let count = 0;
      while (x < end && grid.data[x] === label) {
        x++;
        count++;
      }
      cells.push(`${names[label]}*${count}`);
    }
    lines.push(cells.join(', '));
  }
  return lines.join('\n');
}

/** A row's runs as flat [label, count, label, count, ...] and the cells they cover, or what is wrong with it. */
function parseRow(line: string, indexByKey: Map<string, number>): { runs: number[]; covered: number } | string {
  const runs: number[] = [];
  let covered = 0;
  for (const rawCell of line.split(',')) {
    const cell = rawCell.trim();
    // Split at the last `*` rather than with one regex: a backtracking pattern is quadratic on long runs of spaces.
    const star = cell.lastIndexOf('*');
    if (star < 0) return cell === '' ? 'an empty cell' : `${quoted(cell)} is not a label*count cell`;
    const key = classKey(cell.slice(0, star));
    const countText = cell.slice(star + 1).trim();
    if (key === '') return `${quoted(cell)} has no label`;
    if (!DIGITS.test(countText)) return `${quoted(cell)} has no count`;
    const label = indexByKey.get(key);
    if (label === undefined) return `unknown label ${quoted(key)}`;
    const count = Number(countText);
    if (count === 0) return `${quoted(cell)} has a zero count`;
    covered += count;
    if (covered > MAX_MASK_GRID_CELLS) return `covers more than ${MAX_MASK_GRID_CELLS} cells`;
    runs.push(label, count);
  }
  return { runs, covered };
}
