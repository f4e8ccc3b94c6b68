import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelFileError } from './errors';

/** File names of the ONNX layout (onnx-community / transformers.js exports of LLaVA-family and InstructBLIP models). */
export const MODEL_FILES = {
  config: 'config.json',
  generationConfig: 'generation_config.json',
  preprocessorConfig: 'preprocessor_config.json',
  processorConfig: 'processor_config.json',
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  chatTemplateJinja: 'chat_template.jinja',
  chatTemplateJson: 'chat_template.json',
  qformerTokenizer: join('qformer_tokenizer', 'tokenizer.json'),
  qformerTokenizerConfig: join('qformer_tokenizer', 'tokenizer_config.json'),
  visionEncoder: join('onnx', 'vision_encoder.onnx'),
  qformer: join('onnx', 'qformer.onnx'),
  embedTokens: join('onnx', 'embed_tokens.onnx'),
  decoder: join('onnx', 'decoder_model_merged.onnx'),
} as const;

/** The graphs of the layout, by the base name their files carry. */
export const GRAPH_NAMES = ['vision_encoder', 'qformer', 'embed_tokens', 'decoder_model_merged'] as const;
export type GraphName = (typeof GRAPH_NAMES)[number];

/**
 * Precision variants, named as transformers.js names them: the file of graph `g` at dtype `d` is
 * `onnx/<g><suffix>.onnx`. `q8` is transformers.js' name for `_quantized`.
 */
export const MODEL_DTYPE_SUFFIXES = {
  fp32: '',
  fp16: '_fp16',
  q4: '_q4',
  q4f16: '_q4f16',
  quantized: '_quantized',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  bnb4: '_bnb4',
} as const;
export type ModelDtype = keyof typeof MODEL_DTYPE_SUFFIXES;
export const MODEL_DTYPES = Object.keys(MODEL_DTYPE_SUFFIXES) as ModelDtype[];

/** One dtype for every graph, or one per graph (unnamed graphs: fp32). */
export type DtypeChoice = ModelDtype | Partial<Record<GraphName, ModelDtype>>;

export function isModelDtype(value: unknown): value is ModelDtype {
  return typeof value === 'string' && Object.hasOwn(MODEL_DTYPE_SUFFIXES, value);
}

/** The file of `graph` at the dtype chosen for it, relative to the model directory. */
export function graphFile(graph: GraphName, choice: DtypeChoice = 'fp32'): string {
  const dtype = typeof choice === 'string' ? choice : (choice[graph] ?? 'fp32');
  if (!isModelDtype(dtype)) {
    throw new ModelFileError(
      'dtype',
      `unknown dtype ${JSON.stringify(dtype)} for ${graph}; known: ${MODEL_DTYPES.join(', ')}`,
    );
  }
  return join('onnx', `${graph}${MODEL_DTYPE_SUFFIXES[dtype]}.onnx`);
}

/** Which architecture the directory holds, from `config.json` `model_type`. */
export type ModelFamily = 'llava' | 'llava_onevision' | 'instructblip';

/** LLaVA-OneVision's anyres settings (config.json). */
export interface OnevisionConfig {
  /** Candidate grid resolutions, in pixels. */
  gridPinpoints: { height: number; width: number }[];
  /** N of `anyres_max_N` (`vision_aspect_ratio`); default 9. */
  maxCrops: number;
}

/** Architecture facts the runtime needs, read from `config.json` (flat or with a nested `text_config`). */
export interface ModelConfig {
  family: ModelFamily;
  modelType: string;
  /** Id of the image placeholder token in the prompt. */
  imageTokenIndex: number;
  /**
   * Positions one image occupies when that number is fixed (plain LLaVA: `image_seq_length`; InstructBLIP:
   * `num_query_tokens`); undefined when it is only known from processor_config.json or the vision graph.
   */
  imageSeqLength: number | undefined;
  /** Vision tower input side in pixels and patch side (vision_config), when given. */
  visionImageSize: number | undefined;
  visionPatchSize: number | undefined;
  onevision: OnevisionConfig | undefined;
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

/** What processor_config.json says (flat as in published repos, or nested as transformers 5 writes it). */
export interface ProcessorConfig {
  /** Feature vectors per crop (`num_image_tokens`). */
  numImageTokens: number | undefined;
  /** `num_query_tokens` (InstructBLIP). */
  numQueryTokens: number | undefined;
  /** The nested image processor config, when the file has one. */
  imageProcessor: Record<string, unknown> | undefined;
}

export async function readJsonFile(modelDir: string, file: string): Promise<Record<string, unknown>> {
  const parsed = await readOptionalJsonFile(modelDir, file);
  if (parsed === undefined) throw new ModelFileError(join(modelDir, file), 'cannot be read (missing file?)');
  return parsed;
}

/** The JSON object in `file`, or undefined when the file does not exist. */
export async function readOptionalJsonFile(modelDir: string, file: string): Promise<Record<string, unknown> | undefined> {
  const text = await readOptionalText(modelDir, file);
  if (text === undefined) return undefined;
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

export async function readOptionalText(modelDir: string, file: string): Promise<string | undefined> {
  try {
    return await readFile(join(modelDir, file), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelFileError(join(modelDir, file), 'cannot be read', { cause: error });
  }
}

function integerField(source: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const value = source[key];
  if ((value === undefined || value === null) && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ModelFileError(file, `field "${key}" must be a non-negative integer (found ${JSON.stringify(value)})`);
  }
  return value;
}

function optionalInteger(source: Record<string, unknown> | undefined, key: string, file: string): number | undefined {
  if (source === undefined || source[key] === undefined || source[key] === null) return undefined;
  return integerField(source, key, file);
}

function optionalNumber(source: Record<string, unknown>, key: string, file: string): number | undefined {
  const value = source[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ModelFileError(file, `field "${key}" must be a number (found ${JSON.stringify(value)})`);
  }
  return value;
}

function objectField(source: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const value = source[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function familyOf(modelType: string): ModelFamily {
  if (modelType === 'llava_onevision') return 'llava_onevision';
  if (modelType === 'instructblip') return 'instructblip';
  return 'llava';
}

function parseOnevision(json: Record<string, unknown>, file: string): OnevisionConfig {
  const pinpoints = json.image_grid_pinpoints;
  if (
    !Array.isArray(pinpoints) ||
    pinpoints.length === 0 ||
    !pinpoints.every((p) => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isInteger(v) && v > 0))
  ) {
    throw new ModelFileError(file, 'field "image_grid_pinpoints" must be a non-empty list of [height, width] pairs');
  }
  const aspect = json.vision_aspect_ratio ?? 'anyres_max_9';
  const match = typeof aspect === 'string' ? /^anyres_max_(\d+)$/.exec(aspect) : null;
  if (!match) {
    throw new ModelFileError(file, `field "vision_aspect_ratio" must look like "anyres_max_9" (found ${JSON.stringify(aspect)})`);
  }
  return {
    gridPinpoints: (pinpoints as [number, number][]).map(([height, width]) => ({ height, width })),
    maxCrops: Number(match[1]),
  };
}

export function parseModelConfig(json: Record<string, unknown>, file: string): ModelConfig {
  const text = objectField(json, 'text_config') ?? json;
  const vision = objectField(json, 'vision_config');
  const modelType = typeof json.model_type === 'string' ? json.model_type : 'unknown';
  const family = familyOf(modelType);
  const hiddenSize = integerField(text, 'hidden_size', file);
  const numHeads = integerField(text, 'num_attention_heads', file);
  if (numHeads === 0) throw new ModelFileError(file, 'field "num_attention_heads" must be positive');
  const imageTokenIndex = json.image_token_index ?? json.image_token_id;
  if (typeof imageTokenIndex !== 'number' || !Number.isInteger(imageTokenIndex)) {
    throw new ModelFileError(file, 'field "image_token_index" (or "image_token_id") must be an integer');
  }
  const imageSeqLength =
    family === 'instructblip' ? optionalInteger(json, 'num_query_tokens', file) : optionalInteger(json, 'image_seq_length', file);
  return {
    family,
    modelType,
    imageTokenIndex,
    imageSeqLength,
    visionImageSize: optionalInteger(vision, 'image_size', file),
    visionPatchSize: optionalInteger(vision, 'patch_size', file),
    onevision: family === 'llava_onevision' ? parseOnevision(json, file) : undefined,
    vocabSize: integerField(text, 'vocab_size', file),
    hiddenSize,
    numLayers: integerField(text, 'num_hidden_layers', file),
    numKeyValueHeads: integerField(text, 'num_key_value_heads', file, numHeads),
    headDim: integerField(text, 'head_dim', file, Math.floor(hiddenSize / numHeads)),
    maxPositionEmbeddings: integerField(text, 'max_position_embeddings', file),
  };
}

export function parseProcessorConfig(json: Record<string, unknown> | undefined, file: string): ProcessorConfig {
  if (json === undefined) return { numImageTokens: undefined, numQueryTokens: undefined, imageProcessor: undefined };
  return {
    numImageTokens: optionalInteger(json, 'num_image_tokens', file),
    numQueryTokens: optionalInteger(json, 'num_query_tokens', file),
    imageProcessor: objectField(json, 'image_processor'),
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

/**
 * The chat template, where transformers and onnx-community repos keep it: `chat_template.jinja`, then
 * `chat_template.json` (`{"chat_template": "..."}`), then `tokenizer_config.json` `chat_template`.
 * Undefined when none has one (e.g. InstructBLIP, whose prompt is the instruction itself).
 */
export async function readChatTemplate(
  modelDir: string,
  tokenizerConfig: Record<string, unknown>,
): Promise<{ template: string; file: string } | undefined> {
  const jinja = await readOptionalText(modelDir, MODEL_FILES.chatTemplateJinja);
  if (jinja !== undefined) return { template: jinja, file: join(modelDir, MODEL_FILES.chatTemplateJinja) };
  const json = await readOptionalJsonFile(modelDir, MODEL_FILES.chatTemplateJson);
  if (json !== undefined) {
    const file = join(modelDir, MODEL_FILES.chatTemplateJson);
    if (typeof json.chat_template !== 'string') throw new ModelFileError(file, 'field "chat_template" must be a string');
    return { template: json.chat_template, file };
  }
  const inline = tokenizerConfig.chat_template;
  const file = join(modelDir, MODEL_FILES.tokenizerConfig);
  if (inline === undefined || inline === null) return undefined;
  if (typeof inline === 'string') return { template: inline, file };
  // Some repos keep a list of named templates; the one named "default" is what apply_chat_template uses.
  if (Array.isArray(inline)) {
    const named = inline.find((entry) => (entry as { name?: unknown }).name === 'default') as { template?: unknown } | undefined;
    if (named && typeof named.template === 'string') return { template: named.template, file };
  }
  throw new ModelFileError(file, 'field "chat_template" must be a string or a list holding a template named "default"');
}
