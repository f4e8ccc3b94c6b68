import { InvalidGenerationRequestError } from './errors';
import type { GenerationConfig } from './model-files';

/** Decoding settings of one request. Unset fields take the model's generation_config.json, then these defaults. */
export interface GenerationOptions {
  /** Most tokens to generate (default 64); clipped to what the context window leaves. */
  maxNewTokens?: number;
  /** Sample instead of taking the most likely token (default false). */
  doSample?: boolean;
  /** Softmax temperature for sampling (default 1). */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 disables (default 0). */
  topK?: number;
  /** Nucleus sampling mass; 1 disables (default 1). */
  topP?: number;
  /** Seed of the sampler's random generator (default 0), so a sampled output can be reproduced. */
  seed?: number;
  /** Beam count; above 1 runs beam search (default 1). */
  numBeams?: number;
  /** Beam search length normalisation exponent: score / length^lengthPenalty (default 1). */
  lengthPenalty?: number;
  /** Penalty for tokens already in the sequence; 1 disables (default 1). */
  repetitionPenalty?: number;
  /** Generation stops when the text ends with one of these; the stop string is cut from the text. */
  stopStrings?: string[];
}

export type ResolvedGenerationOptions = Required<GenerationOptions>;

export const GENERATION_DEFAULTS: ResolvedGenerationOptions = {
  maxNewTokens: 64,
  doSample: false,
  temperature: 1,
  topK: 0,
  topP: 1,
  seed: 0,
  numBeams: 1,
  lengthPenalty: 1,
  repetitionPenalty: 1,
  stopStrings: [],
};

/** Upper bounds that protect the service from one request (configurable by the runtime's owner). */
export interface GenerationLimits {
  maxNewTokens: number;
  maxBeams: number;
}

export const DEFAULT_GENERATION_LIMITS: GenerationLimits = { maxNewTokens: 512, maxBeams: 8 };

function pick<T>(...values: (T | undefined)[]): T {
  return values.find((value) => value !== undefined) as T;
}

export function resolveGenerationOptions(
  options: GenerationOptions | undefined,
  modelDefaults: GenerationConfig,
  limits: GenerationLimits,
): ResolvedGenerationOptions {
  const o = options ?? {};
  const resolved: ResolvedGenerationOptions = {
    maxNewTokens: pick(o.maxNewTokens, modelDefaults.maxNewTokens, GENERATION_DEFAULTS.maxNewTokens),
    doSample: pick(o.doSample, modelDefaults.doSample, GENERATION_DEFAULTS.doSample),
    temperature: pick(o.temperature, modelDefaults.temperature, GENERATION_DEFAULTS.temperature),
    topK: pick(o.topK, modelDefaults.topK, GENERATION_DEFAULTS.topK),
    topP: pick(o.topP, modelDefaults.topP, GENERATION_DEFAULTS.topP),
    seed: pick(o.seed, GENERATION_DEFAULTS.seed),
    numBeams: pick(o.numBeams, modelDefaults.numBeams, GENERATION_DEFAULTS.numBeams),
    lengthPenalty: pick(o.lengthPenalty, modelDefaults.lengthPenalty, GENERATION_DEFAULTS.lengthPenalty),
    repetitionPenalty: pick(o.repetitionPenalty, modelDefaults.repetitionPenalty, GENERATION_DEFAULTS.repetitionPenalty),
    stopStrings: pick(o.stopStrings, GENERATION_DEFAULTS.stopStrings),
  };
  const problems: string[] = [];
  const integerIn = (name: keyof ResolvedGenerationOptions, min: number, max: number): void => {
    const value = resolved[name] as number;
    if (!Number.isInteger(value) || value < min || value > max) problems.push(`${name} must be an integer in [${min}, ${max}] (got ${value})`);
  };
  integerIn('maxNewTokens', 1, limits.maxNewTokens);
  integerIn('numBeams', 1, limits.maxBeams);
  integerIn('topK', 0, Number.MAX_SAFE_INTEGER);
  integerIn('seed', 0, 2 ** 32 - 1);
  if (!(resolved.temperature > 0) || !Number.isFinite(resolved.temperature)) problems.push(`temperature must be > 0 (got ${resolved.temperature})`);
  if (!(resolved.topP > 0 && resolved.topP <= 1)) problems.push(`topP must be in (0, 1] (got ${resolved.topP})`);
  if (!(resolved.repetitionPenalty > 0) || !Number.isFinite(resolved.repetitionPenalty)) {
    problems.push(`repetitionPenalty must be > 0 (got ${resolved.repetitionPenalty})`);
  }
  if (!Number.isFinite(resolved.lengthPenalty)) problems.push(`lengthPenalty must be a finite number (got ${resolved.lengthPenalty})`);
  if (!Array.isArray(resolved.stopStrings) || resolved.stopStrings.some((s) => typeof s !== 'string' || s.length === 0)) {
    problems.push('stopStrings must be a list of non-empty strings');
  }
  if (resolved.doSample && resolved.numBeams > 1) problems.push('sampling with beam search is not supported: set doSample or numBeams > 1, not both');
  if (problems.length > 0) throw new InvalidGenerationRequestError(`invalid generation options: ${problems.join('; ')}`);
  return resolved;
}
