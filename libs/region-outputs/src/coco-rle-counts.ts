/**
 * The counts string of COCO's compressed RLE, as pycocotools' `rleToString` / `rleFrString` write and read it:
 * each count (from the fourth on, i > 2, minus the count two before it) as a signed little-endian number in 5-bit
 * groups, one character per group (group + 48), bit 0x20 set on every group but the last, the last group's
 * bit 0x10 being the sign.
 */
import { InvalidCocoRleError } from './errors';

// A uint32 count minus another needs 34 bits with its sign: seven 5-bit groups.
const MAX_GROUPS = 7;

export function encodeCocoCounts(counts: readonly number[]): string {
  let text = '';
  counts.forEach((count, i) => {
    let x = i > 2 ? count - counts[i - 2] : count;
    let more = true;
    while (more) {
      let group = ((x % 32) + 32) % 32;
      // Arithmetic shift without int32 overflow: counts of large masks pass 2^31.
      x = Math.floor(x / 32);
      more = group & 0x10 ? x !== -1 : x !== 0;
      if (more) group |= 0x20;
      text += String.fromCharCode(group + 48);
    }
  });
  return text;
}

/** Throws InvalidCocoRleError for a character outside the alphabet, a number cut short or a negative count. */
export function decodeCocoCounts(text: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < text.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= text.length) throw new InvalidCocoRleError(`counts end inside a number (at character ${p})`);
      const group = text.charCodeAt(p) - 48;
      if (group < 0 || group > 63) throw new InvalidCocoRleError(`character ${p} (${JSON.stringify(text[p])}) is not in the counts alphabet`);
      if (k === MAX_GROUPS) throw new InvalidCocoRleError(`the number ending at character ${p} is longer than ${MAX_GROUPS} characters`);
      x += (group & 0x1f) * 32 ** k;
      more = (group & 0x20) !== 0;
      p++;
      k++;
      if (!more && group & 0x10) x -= 32 ** k;
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    if (x < 0) throw new InvalidCocoRleError(`count ${counts.length} is negative (${x})`);
    counts.push(x);
  }
  return counts;
}
