import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelFileError } from './errors';

/** File names of the LLaVA-family ONNX layout (Optimum / transformers.js exports). */
export const MODEL_FILES = {
  config: 'config.json',
  generationConfig: 'generation_config.json',
  preprocessorConfig: 'preprocessor_config.json',
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  visionEncoder: join('onnx', 'vision_encoder.onnx'),
  embedTokens: join('onnx', 'embed_tokens.onnx'),
  decoder: join('onnx', 'decoder_model_merged.onnx'),
} as const;

/** Architecture facts the runtime needs, read from `config.json` (flat or with a nested `text_config`). */
export interface ModelConfig {
  modelType: string;
  /** Id of the image placeholder token in the prompt. */
  imageTokenIndex: number;
  /** How many embedding positions one image occupies (the vision encoder's N). */
  imageSeqLength: number;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numKeyValueHeads: number;
  headDim: number;
  /** Longest sequence (prompt + generated) the model accepts. */
  maxPositionEmbeddings: number;
}

/** Decoding defaults and special ids from `generation_config.json`. */
export interface GenerationConfig {
  bosTokenId: number | undefined;
  eosTokenIds: number[];
  padTokenId: number;
  maxNewTokens: number | undefined;
  doSample: boolean;
  numBeams: number | undefined;
  temperature: number | undefined;
  topK: number | undefined;
  topP: number | undefined;
  repetitionPenalty: number | undefined;
  lengthPenalty: number | undefined;
}

export async function readJsonFile(modelDir: string, file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(join(modelDir, file), 'utf8');
  } catch (error) {
    throw new ModelFileError(join(modelDir, file), 'cannot be read (missing file?)', { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ModelFileError(join(modelDir, file), `is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ModelFileError(join(modelDir, file), 'must hold a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function integerField(
  source: Record<string, unknown>,
  key: string,
  file: string,
  fallback?: number,
): number {
  const value = source[key];
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ModelFileError(file, `field "${key}" must be a non-negative integer (found ${JSON.stringify(value)})`);
  }
  return value;
}

function optionalNumber(source: Record<string, unknown>, key: string, file: string): number | undefined {
  const value = source[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ModelFileError(file, `field "${key}" must be a number (found ${JSON.stringify(value)})`);
  }
  return value;
}

export function parseModelConfig(json: Record<string, unknown>, file: string): ModelConfig {
  const text = (typeof json.text_config === 'object' && json.text_config !== null ? json.text_config : json) as Record<
    string,
    unknown
  >;
  const hiddenSize = integerField(text, 'hidden_size', file);
  const numHeads = integerField(text, 'num_attention_heads', file);
  if (numHeads === 0) throw new ModelFileError(file, 'field "num_attention_heads" must be positive');
  const imageTokenIndex = json.image_token_index ?? json.image_token_id;
  if (typeof imageTokenIndex !== 'number' || !Number.isInteger(imageTokenIndex)) {
    throw new ModelFileError(file, 'field "image_token_index" (or "image_token_id") must be an integer');
  }
  return {
    modelType: typeof json.model_type === 'string' ? json.model_type : 'unknown',
    imageTokenIndex,
    imageSeqLength: integerField(json, 'image_seq_length', file),
    vocabSize: integerField(text, 'vocab_size', file),
    hiddenSize,
    numLayers: integerField(text, 'num_hidden_layers', file),
    numKeyValueHeads: integerField(text, 'num_key_value_heads', file, numHeads),
    headDim: integerField(text, 'head_dim', file, Math.floor(hiddenSize / numHeads)),
    maxPositionEmbeddings: integerField(text, 'max_position_embeddings', file),
  };
}

export function parseGenerationConfig(json: Record<string, unknown>, file: string, fallbackPadId: number): GenerationConfig {
  const eos = json.eos_token_id;
  const eosTokenIds = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  if (!eosTokenIds.every((id) => typeof id === 'number' && Number.isInteger(id))) {
    throw new ModelFileError(file, 'field "eos_token_id" must be an integer or a list of integers');
  }
  const bos = optionalNumber(json, 'bos_token_id', file);
  const pad = optionalNumber(json, 'pad_token_id', file);
  return {
    bosTokenId: bos,
    eosTokenIds: eosTokenIds as number[],
    padTokenId: pad ?? (eosTokenIds[0] as number | undefined) ?? fallbackPadId,
    maxNewTokens: optionalNumber(json, 'max_new_tokens', file),
    doSample: json.do_sample === true,
    numBeams: optionalNumber(json, 'num_beams', file),
    temperature: optionalNumber(json, 'temperature', file),
    topK: optionalNumber(json, 'top_k', file),
    topP: optionalNumber(json, 'top_p', file),
    repetitionPenalty: optionalNumber(json, 'repetition_penalty', file),
    lengthPenalty: optionalNumber(json, 'length_penalty', file),
  };
}
