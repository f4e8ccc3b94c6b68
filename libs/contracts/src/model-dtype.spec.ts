import { describe, expect, it } from 'vitest';
import { ContractValidationError, formatDtypeSetting, isModelDtypeName, MODEL_DTYPE_NAMES, parseDtypeSetting } from './index';

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ContractValidationError) return error.problems;
    throw error;
  }
  throw new Error('expected a ContractValidationError');
}

describe('dtype settings', () => {
  it('reads a name for every graph, or graph=dtype pairs, and writes them back the same way', () => {
    for (const name of MODEL_DTYPE_NAMES) expect(parseDtypeSetting(name)).toBe(name);
    expect(parseDtypeSetting(' fp16 ')).toBe('fp16');
    const perGraph = parseDtypeSetting('decoder_model_merged=q4f16, vision_encoder=fp32');
    expect(perGraph).toEqual({ vision_encoder: 'fp32', decoder_model_merged: 'q4f16' });
    expect(formatDtypeSetting(perGraph)).toBe('vision_encoder=fp32,decoder_model_merged=q4f16');
    expect(parseDtypeSetting(formatDtypeSetting(perGraph))).toEqual(perGraph);
    expect(formatDtypeSetting('q8')).toBe('q8');
  });

  it('names every problem of a setting', () => {
    expect(problemsOf(() => parseDtypeSetting('fp8'))).toEqual([expect.stringMatching(/^dtype: "fp8" is not a dtype \(fp32, fp16, .*\) nor a list graph=dtype/)]);
    expect(problemsOf(() => parseDtypeSetting('lm_head=fp16,vision_encoder=int4,embed_tokens,qformer=fp16,qformer=fp32', '--dtype'))).toEqual([
      '--dtype: unknown graph "lm_head" (graphs: vision_encoder, qformer, embed_tokens, decoder_model_merged)',
      expect.stringMatching(/^--dtype: unknown dtype "int4" for vision_encoder/),
      '--dtype: "embed_tokens" is not graph=dtype',
      '--dtype: graph qformer given twice',
    ]);
  });

  it('knows the names only', () => {
    expect(isModelDtypeName('q4f16')).toBe(true);
    expect(isModelDtypeName('Q4F16')).toBe(false);
    expect(isModelDtypeName(16)).toBe(false);
  });
});
