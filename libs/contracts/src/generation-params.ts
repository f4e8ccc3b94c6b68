import { z } from 'zod';

/**
 * Decoding overrides that travel with a request and sit in a pack's expert settings. An unset field
 * keeps the next default: request → pack expert → the model's generation_config.json → runtime default.
 * Structurally a subset of libs/runtime's GenerationOptions, so it can be passed to it directly.
 */
export interface GenerationParams {
  /** Most tokens to generate (integer ≥ 1). */
  maxNewTokens?: number;
  /** Beam count; 1 is greedy, above 1 beam search (integer ≥ 1). */
  numBeams?: number;
  /** Sample instead of taking the most likely token. */
  doSample?: boolean;
  /** Softmax temperature for sampling (> 0). */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 disables (integer ≥ 0). */
  topK?: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables. */
  topP?: number;
  /** Seed of the sampler (integer in [0, 2^32 - 1]). */
  seed?: number;
  /** Penalty for tokens already in the sequence (> 0); 1 disables. */
  repetitionPenalty?: number;
  /** Beam search length normalisation exponent (finite). */
  lengthPenalty?: number;
  /** Generation stops when the text ends with one of these (non-empty strings). */
  stopStrings?: string[];
}

export const generationParamsSchema: z.ZodType<GenerationParams, z.ZodTypeDef, unknown> = z
  .object({
    maxNewTokens: z.number().int().min(1),
    numBeams: z.number().int().min(1),
    doSample: z.boolean(),
    temperature: z.number().finite().positive(),
    topK: z.number().int().min(0),
    topP: z.number().gt(0).lte(1),
    seed: z.number().int().min(0).max(2 ** 32 - 1),
    repetitionPenalty: z.number().finite().positive(),
    lengthPenalty: z.number().finite(),
    stopStrings: z.array(z.string().min(1)),
  })
  .partial()
  .strict();
