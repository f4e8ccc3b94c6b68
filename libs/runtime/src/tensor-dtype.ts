import * as ort from 'onnxruntime-node';

/**
 * float16 <-> float32 for graphs whose inputs or outputs are float16 (onnx-community `_fp16` / `_q4f16` exports
 * that do not keep float32 I/O). onnxruntime-node holds float16 tensors as the raw bits in a Uint16Array.
 */

const HALF_TO_FLOAT = (() => {
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) table[bits] = fraction ? NaN : sign * Infinity;
    else table[bits] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return table;
})();

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** IEEE 754 binary16 bits of `value`, rounded to nearest even (what numpy's astype(float16) does). */
export function floatToHalfBits(value: number): number {
  scratch[0] = value;
  const x = scratchBits[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const unbiased = exponent - 127 + 15;
  if (unbiased >= 31) return sign | 0x7c00;
  if (unbiased <= 0) {
    if (unbiased < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - unbiased;
    const half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    return sign | (half + (rest > midpoint || (rest === midpoint && half & 1) ? 1 : 0));
  }
  const half = (unbiased << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and overflows to infinity at the top).
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

export function halfBitsToFloat(bits: number): number {
  return HALF_TO_FLOAT[bits & 0xffff];
}

export function toHalf(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalfBits(values[i]);
  return out;
}

export function fromHalf(bits: Uint16Array, start = 0, end = bits.length): Float32Array {
  const out = new Float32Array(end - start);
  for (let i = start; i < end; i++) out[i - start] = HALF_TO_FLOAT[bits[i]];
  return out;
}

/** Element types the runtime accepts for a floating-point tensor of the layout. */
export const FLOAT_TYPES = ['float32', 'float16'] as const;
export type FloatType = (typeof FLOAT_TYPES)[number];

/** A float tensor of the given element type from float32 values. */
export function floatTensor(type: FloatType, values: Float32Array, dims: readonly number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', toHalf(values), dims) : new ort.Tensor('float32', values, dims);
}

/** The values [start, end) of a float32 or float16 tensor, as float32 (a copy). */
export function readFloats(tensor: ort.Tensor, start = 0, end = tensor.size): Float32Array {
  if (tensor.type === 'float16') return fromHalf(tensor.data as Uint16Array, start, end);
  if (tensor.type !== 'float32') throw new TypeError(`expected a float tensor, got ${tensor.type}`);
  return (tensor.data as Float32Array).slice(start, end);
}
