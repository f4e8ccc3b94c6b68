import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** The committed tiny random-weight LLaVA fixture exported by tools/train/make_tiny_fixture.py. */
export const TINY_MODEL_DIR = resolve(__dirname, '../../../models/fixtures/tiny-llava');

/** Real remote-sensing samples that live next to the repository (never copied into it). */
export const SHARED_DATASETS_DIR = resolve(__dirname, '../../../../shared/datasets');

export interface GoldenCase {
  prompt: string;
  image: string;
  rendered_prompt: string;
  input_ids: number[];
  pixel_values: number[];
  first_step_logits: number[];
  greedy_tokens: number[];
  greedy_text: string;
}

export interface Golden {
  seed: number;
  max_new_tokens: number;
  cases: GoldenCase[];
}

export function readGolden(modelDir = TINY_MODEL_DIR): Golden {
  return JSON.parse(readFileSync(resolve(modelDir, 'golden.json'), 'utf8')) as Golden;
}

export function readGoldenImage(goldenCase: GoldenCase, modelDir = TINY_MODEL_DIR): Uint8Array {
  return new Uint8Array(readFileSync(resolve(modelDir, goldenCase.image)));
}

export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
