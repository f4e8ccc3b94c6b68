import { access, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import {
  ContractValidationError,
  EXPERT_ID_PATTERN,
  PACK_MANIFEST_FILE,
  PackManifestError,
  loadPackManifest,
  parseDtypeSetting,
  parsePackManifest,
  type DtypeSetting,
  type PromptTemplates,
} from '@rsmoe/contracts';
import { graphFile, readEncoderId } from '@rsmoe/runtime';
import { CliInputError, withInputErrors } from './cli-input';

/** Files every expert directory must hold (the runtime loads nothing without them). */
export const REQUIRED_EXPERT_FILES = ['config.json', join('onnx', 'vision_encoder.onnx'), join('onnx', 'decoder_model_merged.onnx')] as const;

/** Options of `rsmoe pack init`. */
export interface PackInitOptions {
  /** Expert directories, one expert each, in fusion order. */
  expertDirs: string[];
  /** Pack directory where pack.json is written; default the experts' common parent directory. */
  outDir?: string;
  /** Pack name; default the pack directory's name. */
  name?: string;
  /** Pack version (default 1.0.0). */
  version?: string;
  /** Prefix prompts with RSUniVLM's task tags (`[CAP]`, `[VQA]`). */
  taskTags?: boolean;
  /** Precision variant every expert loads (`dtype` in pack.json); default none, i.e. fp32. */
  dtype?: DtypeSetting;
  /** Replace an existing pack.json. */
  force?: boolean;
}

/** What `rsmoe pack init` wrote. */
export interface PackInitSummary {
  file: string;
  name: string;
  version: string;
  experts: { id: string; model: string; encoderId: string; modelType: string }[];
}

interface RawExpert {
  id: string;
  description: string;
  model: string;
  encoderId: string;
  dtype?: DtypeSetting;
  aspects: string[];
  questionTypes: string[];
  prompts: PromptTemplates;
  generation: { maxNewTokens: number; numBeams: number; doSample: boolean };
}

const DEFAULT_VERSION = '1.0.0';
const PACK_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const DEFAULT_GENERATION = { maxNewTokens: 64, numBeams: 1, doSample: false };

/**
 * Default prompts per model family. LLaVA: a plain instruction and LLaVA-1.5's short-answer VQA suffix; InstructBLIP:
 * the captioning and short-answer instructions of its instruction-tuning templates. With task tags (RSUniVLM), the
 * tag selects the task the model was trained for.
 */
function defaultPrompts(modelType: string, taskTags: boolean): PromptTemplates {
  if (taskTags) return { caption: '[CAP] Describe this image briefly.', vqa: '[VQA] {question}' };
  if (modelType === 'instructblip') return { caption: 'A short image description:', vqa: 'Question: {question} Short answer:' };
  return { caption: 'Describe this image briefly.', vqa: '{question}\nAnswer the question using a single word or phrase.' };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function checkExpertDir(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) throw new CliInputError(`${dir}: no such directory`);
  if (!info.isDirectory()) throw new CliInputError(`${dir}: not a directory`);
  for (const file of REQUIRED_EXPERT_FILES) {
    if (!(await exists(join(dir, file)))) throw new CliInputError(`${dir}: not an expert directory: ${file} is missing`);
  }
}

async function checkDtypeFiles(dir: string, dtype: DtypeSetting): Promise<void> {
  for (const graph of ['vision_encoder', 'qformer', 'embed_tokens', 'decoder_model_merged'] as const) {
    // qformer.onnx exists only in InstructBLIP-style experts
    if (!(await exists(join(dir, graphFile(graph, 'fp32'))))) continue;
    const file = graphFile(graph, dtype);
    if (!(await exists(join(dir, file)))) throw new CliInputError(`${dir}: --dtype needs ${file}, which is missing (export it with --dtypes)`);
  }
}

async function modelTypeOf(dir: string): Promise<string> {
  try {
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { model_type?: unknown };
    return typeof config.model_type === 'string' ? config.model_type : 'unknown';
  } catch (error) {
    throw new CliInputError(`${join(dir, 'config.json')}: not valid JSON (${(error as Error).message})`);
  }
}

function expertIdOf(dir: string): string {
  const cleaned = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, 32);
  if (!EXPERT_ID_PATTERN.test(cleaned)) throw new CliInputError(`${dir}: cannot make an expert id from the directory name; rename it to start with a letter`);
  return cleaned;
}

function packDirOf(dirs: string[], outDir: string | undefined): string {
  if (outDir !== undefined) return resolve(outDir);
  const parents = new Set(dirs.map((dir) => dirname(dir)));
  if (parents.size !== 1) throw new CliInputError('the expert directories have different parent directories: say where pack.json goes with --out');
  return [...parents][0];
}

/** Relative path from the pack to an expert, with `/` whatever the platform (pack.json travels between machines). */
function modelPath(packDir: string, dir: string): string {
  return relative(packDir, dir).split(sep).join('/') || '.';
}

/**
 * Writes `<pack>/pack.json` for the given expert directories and checks it with the contracts' manifest loader.
 * Each expert's encoderId is the runtime's content identity of its vision encoder (sha256 over the graph at the
 * chosen dtype, its external data files and its preprocessing settings), so experts that share an encoder share
 * the id and the mesh computes their image features once.
 */
export async function initPack(options: PackInitOptions): Promise<PackInitSummary> {
  if (options.expertDirs.length === 0) throw new CliInputError('name at least one expert directory');
  const dirs = options.expertDirs.map((dir) => resolve(dir));
  for (const dir of dirs) await checkExpertDir(dir);
  const packDir = packDirOf(dirs, options.outDir);
  const file = join(packDir, PACK_MANIFEST_FILE);
  if (!options.force && (await exists(file))) throw new CliInputError(`${file} exists; use --force to replace it`);
  const name = options.name ?? basename(packDir).toLowerCase();
  if (!PACK_NAME_PATTERN.test(name)) throw new CliInputError(`pack name ${JSON.stringify(name)} must be 1-64 of [a-z0-9._-]: set --name`);

  const experts: RawExpert[] = [];
  const modelTypes: string[] = [];
  for (const dir of dirs) {
    const id = expertIdOf(dir);
    const twin = experts.find((expert) => expert.id === id);
    if (twin) throw new CliInputError(`${dir}: expert id "${id}" is already taken by ${twin.model}; directory names must differ`);
    if (options.dtype !== undefined) await checkDtypeFiles(dir, options.dtype);
    const modelType = await modelTypeOf(dir);
    let encoderId: string;
    try {
      encoderId = `sha256-${await readEncoderId(dir, options.dtype ?? 'fp32')}`;
    } catch (error) {
      throw new CliInputError(`${dir}: cannot read the vision encoder identity (${(error as Error).message})`);
    }
    const model = modelPath(packDir, dir);
    modelTypes.push(modelType);
    experts.push({
      id,
      description: `${modelType} expert in ${model}`,
      model,
      encoderId,
      ...(options.dtype !== undefined ? { dtype: options.dtype } : {}),
      aspects: [id],
      questionTypes: [],
      prompts: defaultPrompts(modelType, options.taskTags ?? false),
      generation: DEFAULT_GENERATION,
    });
  }
  const raw = {
    name,
    version: options.version ?? DEFAULT_VERSION,
    description: `Pack of ${experts.length} expert${experts.length === 1 ? '' : 's'} made by rsmoe pack init.`,
    experts,
  };
  try {
    parsePackManifest(raw, packDir, file);
  } catch (error) {
    if (error instanceof PackManifestError) throw new CliInputError(error.message);
    throw error;
  }
  await mkdir(packDir, { recursive: true });
  await writeFile(file, `${JSON.stringify(raw, null, 2)}\n`);
  const manifest = loadPackManifest(packDir);
  return {
    file,
    name: manifest.name,
    version: manifest.version,
    experts: manifest.experts.map((expert, i) => ({ id: expert.id, model: expert.model, encoderId: expert.encoderId, modelType: modelTypes[i] })),
  };
}

interface PackInitFlags {
  out?: string;
  name?: string;
  version?: string;
  taskTags?: boolean;
  dtype?: string;
  force?: boolean;
}

function dtypeFlag(text: string | undefined): DtypeSetting | undefined {
  if (text === undefined) return undefined;
  try {
    return parseDtypeSetting(text, '--dtype');
  } catch (error) {
    if (error instanceof ContractValidationError) throw new CliInputError(error.problems.join('; '));
    throw error;
  }
}

/** `rsmoe pack init`: a pack.json for exported expert directories (tools/export), one expert per directory. */
export function registerPackCommand(program: Command): void {
  const pack = program.command('pack').description('model packs: pack.json for exported expert directories');
  const command = pack
    .command('init')
    .description('write pack.json for expert directories (one expert each; experts sharing a vision encoder share its id)')
    .argument('<expert-dirs...>', 'expert directories in the ONNX layout of tools/export (fusion order)')
    .option('--out <dir>', 'pack directory for pack.json (default: the experts\' common parent)')
    .option('--name <name>', 'pack name (default: the pack directory name)')
    .option('--version <version>', 'pack version', DEFAULT_VERSION)
    .option('--task-tags', 'prefix prompts with RSUniVLM task tags ([CAP], [VQA])')
    .option('--dtype <dtype>', 'precision variant for every expert: fp16, q4f16, ... or graph=dtype,... (default fp32)')
    .option('--force', 'replace an existing pack.json');
  command.action(
    withInputErrors(command, async (expertDirs: string[], flags: PackInitFlags) => {
      const summary = await initPack({
        expertDirs,
        outDir: flags.out,
        name: flags.name,
        version: flags.version,
        taskTags: flags.taskTags,
        dtype: dtypeFlag(flags.dtype),
        force: flags.force,
      });
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    }),
  );
}
