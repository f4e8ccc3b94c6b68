import { describe, expect, it } from 'vitest';
import { DEFAULT_GENERATION_PARAM_LIMITS, MODEL_DTYPE_NAMES, MODEL_GRAPH_NAMES, generationParamsSchema, type DtypeSetting } from '@rsmoe/contracts';
import { DEFAULT_GENERATION_LIMITS, GRAPH_NAMES, MODEL_DTYPES, isModelDtype, type DtypeChoice } from '@rsmoe/runtime';

/**
 * libs/contracts spells the runtime's dtype and graph names itself (it never loads onnxruntime); these
 * tests keep both spellings equal. The assignments below make the compiler check the types both ways.
 */
describe('contracts and runtime agree on', () => {
  it('the dtype names', () => {
    expect([...MODEL_DTYPE_NAMES]).toEqual([...MODEL_DTYPES]);
    for (const name of MODEL_DTYPE_NAMES) expect(isModelDtype(name)).toBe(true);
  });

  it('the graph names', () => {
    expect([...MODEL_GRAPH_NAMES]).toEqual([...GRAPH_NAMES]);
  });

  it('the dtype setting type', () => {
    const fromPack: DtypeSetting = { vision_encoder: 'fp32', decoder_model_merged: 'q4f16' };
    const forRuntime: DtypeChoice = fromPack;
    const back: DtypeSetting = forRuntime;
    expect(back).toBe(fromPack);
  });

  it('the generation limits: what the gateway refuses at the edge is what the runtime would refuse', () => {
    expect({ maxNewTokens: DEFAULT_GENERATION_PARAM_LIMITS.maxNewTokens, maxBeams: DEFAULT_GENERATION_PARAM_LIMITS.maxBeams }).toEqual({ ...DEFAULT_GENERATION_LIMITS });
    const limits = DEFAULT_GENERATION_LIMITS;
    expect(generationParamsSchema.safeParse({ maxNewTokens: limits.maxNewTokens, numBeams: limits.maxBeams }).success).toBe(true);
    expect(generationParamsSchema.safeParse({ maxNewTokens: limits.maxNewTokens + 1 }).success).toBe(false);
    expect(generationParamsSchema.safeParse({ numBeams: limits.maxBeams + 1 }).success).toBe(false);
  });
});
