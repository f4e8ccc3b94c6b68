import { z } from 'zod';
import { ContractValidationError } from './errors';

/**
 * Precision variants of an expert's ONNX graphs, as transformers.js names them (`onnx/<graph>_<suffix>.onnx`;
 * `fp32` is the plain file, `q8` another name for `quantized`). The runtime (libs/runtime MODEL_DTYPES)
 * knows the same names; contracts spell them here so that they never load onnxruntime, and
 * test/contracts/runtime-agreement.spec.ts checks that both lists stay equal.
 */
export const MODEL_DTYPE_NAMES = ['fp32', 'fp16', 'q4', 'q4f16', 'quantized', 'q8', 'int8', 'uint8', 'bnb4'] as const;
export type ModelDtypeName = (typeof MODEL_DTYPE_NAMES)[number];

/** The graphs of an expert directory a dtype can be chosen for (libs/runtime GRAPH_NAMES). */
export const MODEL_GRAPH_NAMES = ['vision_encoder', 'qformer', 'embed_tokens', 'decoder_model_merged'] as const;
export type ModelGraphName = (typeof MODEL_GRAPH_NAMES)[number];

/** One dtype for every graph of a model, or one per graph (graphs not named: `fp32`). */
export type DtypeSetting = ModelDtypeName | Partial<Record<ModelGraphName, ModelDtypeName>>;

export function isModelDtypeName(value: unknown): value is ModelDtypeName {
  return typeof value === 'string' && (MODEL_DTYPE_NAMES as readonly string[]).includes(value);
}

const dtypeNameSchema = z.enum(MODEL_DTYPE_NAMES, {
  errorMap: () => ({ message: `must be one of ${MODEL_DTYPE_NAMES.join(', ')}` }),
});

const dtypeMapSchema = z
  .object(Object.fromEntries(MODEL_GRAPH_NAMES.map((graph) => [graph, dtypeNameSchema.optional()])) as Record<ModelGraphName, z.ZodOptional<typeof dtypeNameSchema>>)
  .strict();

/** A dtype as written in pack.json: a name, or an object of graph name → name (at least one graph). */
export const dtypeSettingSchema: z.ZodType<DtypeSetting, z.ZodTypeDef, unknown> = z.unknown().transform((value, ctx): DtypeSetting => {
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (typeof value !== 'string' && !isObject) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `must be one of ${MODEL_DTYPE_NAMES.join(', ')}, or an object of ${MODEL_GRAPH_NAMES.join(' / ')} → one of them`,
    });
    return z.NEVER;
  }
  if (isObject && Object.keys(value).length === 0) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `names no graph (graphs: ${MODEL_GRAPH_NAMES.join(', ')})` });
    return z.NEVER;
  }
  const parsed = (typeof value === 'string' ? dtypeNameSchema : dtypeMapSchema).safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ code: z.ZodIssueCode.custom, message: issue.message, path: issue.path });
    return z.NEVER;
  }
  return parsed.data;
});

/**
 * Reads a dtype from a command-line flag or an environment variable: a name (`fp16`), or per graph
 * `vision_encoder=fp32,decoder_model_merged=q4f16`. Throws ContractValidationError naming what is wrong.
 */
export function parseDtypeSetting(text: string, field = 'dtype'): DtypeSetting {
  const value = text.trim();
  if (isModelDtypeName(value)) return value;
  if (!value.includes('=')) {
    throw new ContractValidationError('dtype', [`${field}: ${JSON.stringify(text)} is not a dtype (${MODEL_DTYPE_NAMES.join(', ')}) nor a list graph=dtype,...`]);
  }
  const problems: string[] = [];
  const map: Partial<Record<ModelGraphName, ModelDtypeName>> = {};
  for (const part of value.split(',')) {
    const [graph, dtype, ...rest] = part.split('=').map((side) => side.trim());
    if (rest.length > 0 || !graph || !dtype) {
      problems.push(`${field}: ${JSON.stringify(part)} is not graph=dtype`);
    } else if (!(MODEL_GRAPH_NAMES as readonly string[]).includes(graph)) {
      problems.push(`${field}: unknown graph ${JSON.stringify(graph)} (graphs: ${MODEL_GRAPH_NAMES.join(', ')})`);
    } else if (!isModelDtypeName(dtype)) {
      problems.push(`${field}: unknown dtype ${JSON.stringify(dtype)} for ${graph} (dtypes: ${MODEL_DTYPE_NAMES.join(', ')})`);
    } else if (map[graph as ModelGraphName] !== undefined) {
      problems.push(`${field}: graph ${graph} given twice`);
    } else {
      map[graph as ModelGraphName] = dtype;
    }
  }
  if (problems.length > 0) throw new ContractValidationError('dtype', problems);
  return map;
}

/** A dtype as `parseDtypeSetting` reads it (and logs show it): `fp16`, or `vision_encoder=fp32,decoder_model_merged=q4f16`. */
export function formatDtypeSetting(dtype: DtypeSetting): string {
  if (typeof dtype === 'string') return dtype;
  return MODEL_GRAPH_NAMES.flatMap((graph) => (dtype[graph] ? [`${graph}=${dtype[graph]}`] : [])).join(',');
}
