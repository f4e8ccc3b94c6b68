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

/**
 * Upper bounds of one request's decoding parameters. The defaults are the runtime's own limits
 * (libs/runtime GenerationLimits: 512 new tokens, 8 beams) plus caps on stop strings, so the gateway refuses
 * at the edge, with the field named, exactly what an expert would refuse.
 */
export interface GenerationParamLimits {
  /** Largest `maxNewTokens`. Default 512. */
  maxNewTokens: number;
  /** Largest `numBeams`. Default 8. */
  maxBeams: number;
  /** Most entries in `stopStrings`. Default 16. */
  maxStopStrings: number;
  /** Most characters (UTF-16 code units) of all `stopStrings` together. Default 1024. */
  maxStopStringsChars: number;
}

export const DEFAULT_GENERATION_PARAM_LIMITS: Readonly<GenerationParamLimits> = Object.freeze({
  maxNewTokens: 512,
  maxBeams: 8,
  maxStopStrings: 16,
  maxStopStringsChars: 1024,
});

/** The GenerationParams schema under `limits`; sampling with beam search is refused (the runtime cannot do both). */
export function generationParamsSchemaWithin(limits: GenerationParamLimits): z.ZodType<GenerationParams, z.ZodTypeDef, unknown> {
  return z
    .object({
      maxNewTokens: z.number().int().min(1).max(limits.maxNewTokens),
      numBeams: z.number().int().min(1).max(limits.maxBeams),
      doSample: z.boolean(),
      temperature: z.number().finite().positive(),
      topK: z.number().int().min(0),
      topP: z.number().gt(0).lte(1),
      seed: z.number().int().min(0).max(2 ** 32 - 1),
      repetitionPenalty: z.number().finite().positive(),
      lengthPenalty: z.number().finite(),
      stopStrings: z
        .array(z.string().min(1))
        .max(limits.maxStopStrings)
        .refine((list) => list.reduce((sum, text) => sum + text.length, 0) <= limits.maxStopStringsChars, {
          message: `all stop strings together may have at most ${limits.maxStopStringsChars} characters`,
        }),
    })
    .partial()
    .strict()
    .refine((params) => !(params.doSample === true && (params.numBeams ?? 1) > 1), {
      message: 'sampling with beam search is not supported: set doSample or numBeams > 1, not both',
      path: ['doSample'],
    });
}

/** GenerationParams under the default limits: what experts accept in a job and packs in their settings. */
export const generationParamsSchema: z.ZodType<GenerationParams, z.ZodTypeDef, unknown> = generationParamsSchemaWithin(DEFAULT_GENERATION_PARAM_LIMITS);
