/**
 * Errors for what callers pass in (sizes, class lists, masks, boxes, COCO RLE). What a model writes never
 * throws: text that does not parse is an `Unparseable` outcome (unparseable.ts).
 */
export abstract class RegionOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A width or height is not a positive integer. */
export class InvalidImageSizeError extends RegionOutputError {
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    super(`image size must be positive integers, got ${width} × ${height}`);
  }
}

/** A mask's data does not hold one byte per pixel of its width × height. */
export class InvalidMaskShapeError extends RegionOutputError {}

/** A class list cannot name mask labels; `problems` lists every problem found. */
export class InvalidClassListError extends RegionOutputError {
  constructor(readonly problems: readonly string[]) {
    super(`invalid class list: ${problems.join('; ')}`);
  }
}

/** A label mask holds a class index the class list does not have (255, the ignore label, is never a class). */
export class LabelOutOfRangeError extends RegionOutputError {
  constructor(
    readonly label: number,
    readonly classCount: number,
  ) {
    super(`label ${label} is not one of the ${classCount} classes`);
  }
}

/** A box cannot be written in RSUniVLM's format (a value outside 0–100, or not finite). */
export class InvalidBoxError extends RegionOutputError {}

/** A COCO RLE object is malformed: `reason` says how. */
export class InvalidCocoRleError extends RegionOutputError {
  constructor(readonly reason: string) {
    super(`invalid COCO RLE: ${reason}`);
  }
}
