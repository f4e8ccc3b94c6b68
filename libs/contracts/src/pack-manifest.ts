import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { PackManifestError } from './errors';
import { generationParamsSchema, type GenerationParams } from './generation-params';
import { EXPERT_ID_PATTERN, type ExpertId } from './identifiers';
import { dtypeSettingSchema, type DtypeSetting } from './model-dtype';
import { EXPERT_TASKS, GRANULARITIES, MASK_BACKGROUND_LABEL, QUESTION_TYPES, type ExpertTask, type Granularity, type QuestionType } from './tasks';
import { formatIssues } from './validation';

/** File name of a pack's manifest inside the pack directory. */
export const PACK_MANIFEST_FILE = 'pack.json';

/** Caption fusion strategy when the manifest names none. */
export const DEFAULT_CAPTION_FUSION = 'ordered-dedup';
/** Answer fusion strategy when the manifest names none. */
export const DEFAULT_ANSWER_FUSION = 'priority';

/**
 * Placeholders a prompt template may contain: `{question}` (the user's question; required in, and only
 * allowed in, `vqa` templates), `{scene}` (a scene hint from the router model; empty when there is none),
 * `{query}` (the phrase to find or segment; required in, and only allowed in, `grounding` and
 * `segmentation` templates) and `{box}` (the region to describe, as RSUniVLM writes boxes:
 * `[x1, y1, x2, y2]` in percent; required in, and only allowed in, `referring` templates).
 */
export const PROMPT_PLACEHOLDERS = Object.freeze(['question', 'scene', 'query', 'box'] as const);
export type PromptPlaceholder = (typeof PROMPT_PLACEHOLDERS)[number];

/** Which expert tasks require (and alone allow) each request-specific placeholder. */
const PLACEHOLDER_TASKS: Readonly<Record<Exclude<PromptPlaceholder, 'scene'>, readonly ExpertTask[]>> = {
  question: ['vqa'],
  query: ['grounding', 'segmentation'],
  box: ['referring'],
};

/** Prompt templates of one expert, per expert task; an expert without a template for a task is never routed it. */
export type PromptTemplates = Partial<Record<ExpertTask, string>>;

/** A rule of the pack that classifies questions before the built-in rules: the first matching rule wins. */
export interface QuestionTypeRule {
  type: QuestionType;
  /** Regular expression source, matched case-insensitively against the question lower-cased with punctuation replaced by single spaces. */
  pattern: string;
}

/** One expert of a pack, resolved. */
export interface PackExpert {
  id: ExpertId;
  description: string;
  /** The model directory as written in the manifest (relative to the pack). */
  model: string;
  /** Absolute path of the model directory (checked to exist). */
  modelDir: string;
  /** Name of the model directory; reported as `model` in results. */
  modelName: string;
  /**
   * The encoder group the pack declares: experts with the same encoderId claim to have identical vision
   * encoders (graph, weights, preprocessing, at their dtypes), so that image features are computed once
   * per image for all of them. The feature cache itself keys on the runtime's content hash of the encoder,
   * so features are shared exactly when encoders are identical; a pack whose declared group holds
   * different encoders is refused at start (`checkSharedEncoders`). Default
   * `<pack name>@<version>/<model directory name>`.
   */
  encoderId: string;
  /**
   * Precision variant of the expert's graphs (transformers.js names: `fp32`, `fp16`, `q4f16`, ...), one
   * for all graphs or one per graph; undefined: the runtime's default, `fp32`. `rsmoe start --dtype`
   * (MODEL_DTYPE of an expert process) overrides it for every expert.
   */
  dtype?: DtypeSetting;
  /** Aspects this expert covers (e.g. theme, object, relation). */
  aspects: string[];
  /** Question types routed to this expert (sparse VQA routing). */
  questionTypes: QuestionType[];
  /**
   * RSUniVLM's granularity (image, region, pixel): its tasks are routed to the expert of their granularity
   * (TASK_GRANULARITY). Absent: an RS-MoE expert, routed by its prompts alone.
   */
  granularity?: Granularity;
  prompts: PromptTemplates;
  /** Decoding settings of this expert; request overrides win. */
  generation: GenerationParams;
}

/** A model pack manifest, validated, with absolute paths. */
export interface PackManifest {
  name: string;
  version: string;
  description: string;
  /** Absolute path of the pack directory. */
  dir: string;
  /** Absolute path of the manifest file. */
  file: string;
  experts: PackExpert[];
  /**
   * Label sets of the pack's models: what a classification answer must be (`classification`) and the classes
   * a segmentation may ask for when the request names none (`segmentation`, without `others`).
   */
  labels: { classification: string[]; segmentation: string[] };
  router: {
    /** Absolute path of the learned router model's directory; null when the pack has none (rules only). */
    modelDir: string | null;
    questionTypeRules: QuestionTypeRule[];
  };
  fusion: {
    /** Caption fusion strategy name (default `ordered-dedup`). */
    caption: string;
    /** Answer fusion strategy name (default `priority`). */
    vqa: string;
    /** Every expert id exactly once: caption fusion order, answer priority order, routing order (default: manifest order). */
    order: ExpertId[];
  };
}

const PLACEHOLDER = /\{([^{}]*)\}/g;

function placeholdersOf(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

const templateSchema = (task: ExpertTask) =>
  z
    .string()
    .min(1)
    .superRefine((template, ctx) => {
      const names = placeholdersOf(template);
      for (const name of names) {
        if (!(PROMPT_PLACEHOLDERS as readonly string[]).includes(name)) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, message: `unknown placeholder {${name}} (allowed: ${PROMPT_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})` });
        }
      }
      for (const [placeholder, tasks] of Object.entries(PLACEHOLDER_TASKS)) {
        const required = tasks.includes(task);
        if (required && !names.includes(placeholder)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `a ${task} prompt must contain {${placeholder}}` });
        if (!required && names.includes(placeholder)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `a ${task} prompt cannot contain {${placeholder}}` });
      }
    });

const promptsSchema = z
  .object(Object.fromEntries(EXPERT_TASKS.map((task) => [task, templateSchema(task).optional()])) as Record<ExpertTask, z.ZodOptional<ReturnType<typeof templateSchema>>>)
  .strict()
  .refine((prompts) => Object.values(prompts).some((template) => template !== undefined), 'needs at least one prompt');

const relativePath = z.string().min(1);

/** Distinct, non-empty labels; no `*`, `,` or line break (they delimit RSUniVLM's mask text). */
const labelListSchema = z
  .array(z.string().regex(/^[^*,\n\r]+$/, 'must be non-empty, without *, commas or line breaks').transform((label) => label.trim()))
  .max(254)
  .refine((labels) => new Set(labels.map((label) => label.toLowerCase())).size === labels.length, 'lists a label twice');

const expertSchema = z
  .object({
    id: z.string().regex(EXPERT_ID_PATTERN, 'must match /^[a-z][a-z0-9_-]{0,31}$/'),
    description: z.string().default(''),
    model: relativePath,
    encoderId: z.string().regex(/^[A-Za-z0-9_.@/-]{1,128}$/, 'must be 1-128 of [A-Za-z0-9_.@/-]').optional(),
    dtype: dtypeSettingSchema.optional(),
    aspects: z.array(z.string().min(1)).default([]),
    questionTypes: z.array(z.enum(QUESTION_TYPES)).default([]),
    granularity: z.enum(GRANULARITIES).optional(),
    prompts: promptsSchema,
    generation: generationParamsSchema.default({}),
  })
  .strict()
  .superRefine((expert, ctx) => {
    if (expert.questionTypes.length > 0 && expert.prompts.vqa === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['questionTypes'], message: 'an expert with question types needs a vqa prompt' });
    }
    if (new Set(expert.questionTypes).size !== expert.questionTypes.length) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['questionTypes'], message: 'lists a question type twice' });
    }
  });

const ruleSchema = z
  .object({
    type: z.enum(QUESTION_TYPES),
    pattern: z.string().min(1).superRefine((pattern, ctx) => {
      try {
        new RegExp(pattern, 'i');
      } catch (error) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `invalid regular expression (${(error as Error).message})` });
      }
    }),
  })
  .strict();

const manifestSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be 1-64 of [a-z0-9._-], starting with a letter or digit'),
    version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$/, 'must be a version such as 1.0.0'),
    description: z.string().default(''),
    experts: z.array(expertSchema).min(1, 'needs at least one expert'),
    labels: z
      .object({ classification: labelListSchema.default([]), segmentation: labelListSchema.default([]) })
      .strict()
      .default({}),
    router: z
      .object({ model: relativePath.nullable().default(null), questionTypeRules: z.array(ruleSchema).default([]) })
      .strict()
      .default({}),
    fusion: z
      .object({
        caption: z.string().min(1).default(DEFAULT_CAPTION_FUSION),
        vqa: z.string().min(1).default(DEFAULT_ANSWER_FUSION),
        order: z.array(z.string()).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

type RawManifest = z.infer<typeof manifestSchema>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkDirectory(packDir: string, path: unknown, field: string, problems: string[]): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return undefined;
  const absolute = isAbsolute(path) ? path : resolve(packDir, path);
  let isDirectory = false;
  try {
    isDirectory = statSync(absolute).isDirectory();
  } catch {
    problems.push(`${field}: directory ${JSON.stringify(path)} does not exist (resolved to ${absolute})`);
    return undefined;
  }
  if (!isDirectory) problems.push(`${field}: ${JSON.stringify(path)} is not a directory (resolved to ${absolute})`);
  return absolute;
}

/** Checks that need the file system or the whole manifest; run on the raw JSON so they add to the schema's problems. */
function crossChecks(raw: unknown, packDir: string, problems: string[]): void {
  if (!isRecord(raw)) return;
  const experts = Array.isArray(raw.experts) ? raw.experts : [];
  const ids: string[] = [];
  experts.forEach((expert, i) => {
    if (!isRecord(expert)) return;
    if (typeof expert.id === 'string') {
      if (ids.includes(expert.id)) problems.push(`experts[${i}].id: duplicate expert id ${JSON.stringify(expert.id)}`);
      ids.push(expert.id);
    }
    checkDirectory(packDir, expert.model, `experts[${i}].model`, problems);
  });
  if (isRecord(raw.router) && raw.router.model !== null && raw.router.model !== undefined) {
    checkDirectory(packDir, raw.router.model, 'router.model', problems);
  }
  const order = isRecord(raw.fusion) ? raw.fusion.order : undefined;
  if (Array.isArray(order)) {
    const seen = new Set<unknown>();
    order.forEach((id, i) => {
      if (typeof id !== 'string') return;
      if (!ids.includes(id)) problems.push(`fusion.order[${i}]: unknown expert ${JSON.stringify(id)}`);
      if (seen.has(id)) problems.push(`fusion.order[${i}]: expert ${JSON.stringify(id)} listed twice`);
      seen.add(id);
    });
    const missing = [...new Set(ids)].filter((id) => !seen.has(id));
    if (missing.length > 0) problems.push(`fusion.order: must list every expert (missing: ${missing.join(', ')})`);
  }
}

function resolveManifest(data: RawManifest, packDir: string, file: string, problems: string[]): PackManifest {
  const experts = data.experts.map((e): PackExpert => {
    const modelDir = isAbsolute(e.model) ? e.model : resolve(packDir, e.model);
    const modelName = basename(modelDir);
    return {
      id: e.id,
      description: e.description,
      model: e.model,
      modelDir,
      modelName,
      encoderId: e.encoderId ?? `${data.name}@${data.version}/${modelName}`,
      ...(e.dtype !== undefined ? { dtype: e.dtype } : {}),
      aspects: e.aspects,
      questionTypes: e.questionTypes,
      ...(e.granularity !== undefined ? { granularity: e.granularity } : {}),
      prompts: e.prompts,
      generation: e.generation,
    };
  });
  // Two different model directories with the same name would share features under the default encoder id.
  const dirsByEncoder = new Map<string, Set<string>>();
  for (const e of experts) dirsByEncoder.set(e.encoderId, (dirsByEncoder.get(e.encoderId) ?? new Set()).add(e.modelDir));
  for (const [encoderId, dirs] of dirsByEncoder) {
    if (dirs.size > 1 && !data.experts.some((e) => e.encoderId === encoderId)) {
      problems.push(`experts: different model directories share the default encoder id ${encoderId}: set encoderId explicitly`);
    }
  }
  return {
    name: data.name,
    version: data.version,
    description: data.description,
    dir: packDir,
    file,
    experts,
    labels: {
      classification: data.labels.classification,
      segmentation: data.labels.segmentation.filter((label) => label.toLowerCase() !== MASK_BACKGROUND_LABEL),
    },
    router: {
      modelDir: data.router.model === null ? null : resolve(packDir, data.router.model),
      questionTypeRules: data.router.questionTypeRules,
    },
    fusion: { caption: data.fusion.caption, vqa: data.fusion.vqa, order: data.fusion.order ?? experts.map((e) => e.id) },
  };
}

/**
 * Validates a parsed manifest. `packDir` resolves the model paths; `file` names the manifest in errors.
 * Throws PackManifestError listing every problem found (schema, duplicates, fusion order, missing directories).
 */
export function parsePackManifest(raw: unknown, packDir: string, file = resolve(packDir, PACK_MANIFEST_FILE)): PackManifest {
  const absoluteDir = resolve(packDir);
  const problems: string[] = [];
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) problems.push(...formatIssues(parsed.error));
  crossChecks(raw, absoluteDir, problems);
  const manifest = parsed.success ? resolveManifest(parsed.data, absoluteDir, file, problems) : undefined;
  if (problems.length > 0 || !manifest) throw new PackManifestError(file, problems);
  return manifest;
}

/**
 * Reads and validates `<packDir>/pack.json` (or the given .json file) synchronously, at boot.
 * Throws PackManifestError naming the file and listing every problem at once.
 */
export function loadPackManifest(packDirOrFile: string): PackManifest {
  const file = resolve(packDirOrFile.endsWith('.json') ? packDirOrFile : resolve(packDirOrFile, PACK_MANIFEST_FILE));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new PackManifestError(file, [`cannot read the manifest (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new PackManifestError(file, [`not valid JSON (${(error as Error).message})`]);
  }
  return parsePackManifest(raw, dirname(file), file);
}

/** The pack's experts in fusion order. */
export function expertsInOrder(manifest: PackManifest): PackExpert[] {
  const byId = new Map(manifest.experts.map((e) => [e.id, e]));
  return manifest.fusion.order.map((id) => byId.get(id)!);
}


/** The dtype an expert runs at: the override (`rsmoe start --dtype`, MODEL_DTYPE), else its own, else `fp32`. */
export function expertDtype(expert: PackExpert, override?: DtypeSetting): DtypeSetting {
  return override ?? expert.dtype ?? 'fp32';
}
