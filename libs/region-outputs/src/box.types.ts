/**
 * An axis-aligned box by two corners. The `unit` travels with the numbers so that a percent box is never read
 * as pixels (or the reverse) once it has crossed a process boundary as JSON.
 */
interface Corners {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/**
 * A box as RSUniVLM writes it: percent (0–100) of the image width (x) and height (y). Corners are kept in the
 * order the model wrote them; the conversions order them.
 */
export interface PercentBox extends Corners {
  unit: 'percent';
}

/**
 * A box in continuous pixel coordinates: 0 is the left (top) edge of the image and `width` (`height`) the right
 * (bottom) edge, so pixel column i spans [i, i + 1). Ordered (x1 ≤ x2, y1 ≤ y2) and inside the image.
 */
export interface PixelBox extends Corners {
  unit: 'px';
}

/** A box as fractions (0–1) of the image width and height. Ordered (x1 ≤ x2, y1 ≤ y2). */
export interface NormBox extends Corners {
  unit: 'norm';
}
