import { scanPolygon } from './geometry';
import type { Random } from './random';
import type { Point } from './scene.types';

export type Rgb = readonly [number, number, number];

export interface PaintOptions {
  /** 0..1 opacity; default 1. */
  alpha?: number;
  /** How strongly the shared grain modulates the colour; default 0.15. */
  texture?: number;
}

/** Smooth value noise in about [-1, 1], bilinear over a random lattice with `cell` pixels per step. */
export function valueNoise(rng: Random, w: number, h: number, cell: number): Float32Array {
  const gw = Math.ceil(w / cell) + 2;
  const gh = Math.ceil(h / cell) + 2;
  const lattice = new Float32Array(gw * gh);
  for (let i = 0; i < lattice.length; i++) lattice[i] = rng.next() * 2 - 1;
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const fy = y / cell;
    const iy = Math.floor(fy);
    const ty = fy - iy;
    for (let x = 0; x < w; x++) {
      const fx = x / cell;
      const ix = Math.floor(fx);
      const tx = fx - ix;
      const a = lattice[iy * gw + ix];
      const b = lattice[iy * gw + ix + 1];
      const c = lattice[(iy + 1) * gw + ix];
      const d = lattice[(iy + 1) * gw + ix + 1];
      out[y * w + x] = (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
    }
  }
  return out;
}

/** A float RGB canvas with a few plain drawing helpers. */
export class Raster {
  readonly data: Float32Array;

  constructor(
    readonly width: number,
    readonly height: number,
    /** Per-pixel texture field in about [-1, 1]. */
    readonly grain: Float32Array,
  ) {
    this.data = new Float32Array(width * height * 3);
  }

  fillPolygon(poly: readonly Point[], colour: Rgb, options: PaintOptions = {}): void {
    const alpha = options.alpha ?? 1;
    const texture = options.texture ?? 0.15;
    scanPolygon(poly, this.width, this.height, (y, x0, x1) => {
      for (let x = x0; x <= x1; x++) this.blend(y * this.width + x, colour, alpha, texture);
    });
  }

  fillCircle(cx: number, cy: number, r: number, colour: Rgb, options: PaintOptions = {}): void {
    const alpha = options.alpha ?? 1;
    const texture = options.texture ?? 0.15;
    const y0 = Math.max(0, Math.floor(cy - r));
    const y1 = Math.min(this.height - 1, Math.ceil(cy + r));
    const x0 = Math.max(0, Math.floor(cx - r));
    const x1 = Math.min(this.width - 1, Math.ceil(cx + r));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) this.blend(y * this.width + x, colour, alpha, texture);
      }
    }
  }

  /** A polyline of the given width with round joints; draw opaque, since joints are painted twice. */
  strokeLine(line: readonly Point[], width: number, colour: Rgb, options: PaintOptions = {}): void {
    for (let i = 0; i + 1 < line.length; i++) {
      const [ax, ay] = line[i];
      const [bx, by] = line[i + 1];
      const len = Math.hypot(bx - ax, by - ay) || 1;
      const nx = (-(by - ay) / len) * (width / 2);
      const ny = ((bx - ax) / len) * (width / 2);
      this.fillPolygon(
        [
          [ax + nx, ay + ny],
          [bx + nx, by + ny],
          [bx - nx, by - ny],
          [ax - nx, ay - ny],
        ],
        colour,
        options,
      );
      if (width > 2 && i > 0) this.fillCircle(ax, ay, width / 2, colour, options);
    }
  }

  /** Applies scene lighting (gain per channel) and sensor noise, and quantises to bytes. */
  toBytes(gain: Rgb, rng: Random, noise: number): Uint8Array {
    const out = new Uint8Array(this.data.length);
    for (let i = 0; i < this.data.length; i += 3) {
      const n = (rng.next() - 0.5) * 2 * noise;
      for (let c = 0; c < 3; c++) out[i + c] = Math.max(0, Math.min(255, Math.round(this.data[i + c] * gain[c] + n)));
    }
    return out;
  }

  private blend(pixel: number, colour: Rgb, alpha: number, texture: number): void {
    const k = 1 + texture * this.grain[pixel];
    const i = pixel * 3;
    for (let c = 0; c < 3; c++) this.data[i + c] += (colour[c] * k - this.data[i + c]) * alpha;
  }
}
