import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { DtypeSetting } from '@rsmoe/contracts';
import { VlmRuntime, type GenerationOptions } from '@rsmoe/runtime';
import { dtypeOption } from './cli-input';

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return parsed;
}

function finiteNumber(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new InvalidArgumentError('expected a number');
  return parsed;
}

function bandList(value: string): [number, number, number] | [number] {
  const bands = value.split(',').map((band) => positiveInteger(band.trim()));
  if (bands.length !== 1 && bands.length !== 3) throw new InvalidArgumentError('expected one band or three (r,g,b)');
  return bands as [number, number, number] | [number];
}

/** Each `--image` adds one image, in the order given (the prompt's order). */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}


interface GenerateFlags {
  model: string;
  image: string[];
  prompt: string;
  maxNewTokens?: number;
  beams?: number;
  lengthPenalty?: number;
  sample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  repetitionPenalty?: number;
  stop?: string[];
  bands?: [number, number, number] | [number];
  provider: 'cpu' | 'cuda' | 'auto';
  threads: number;
  dtype?: DtypeSetting;
  json?: boolean;
}

/** `rsmoe generate`: one prompt with its images through one expert directory, on this machine (no services). */
export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('run one model directory (LLaVA ONNX layout) on a prompt and its images, locally')
    .requiredOption('-m, --model <dir>', 'expert directory in the LLaVA ONNX layout')
    .option('-i, --image <file>', 'PNG, JPEG, WebP, TIFF or GeoTIFF image; repeat for several, in prompt order', collect, [])
    .requiredOption('-p, --prompt <text>', 'instruction or question')
    .option('--max-new-tokens <n>', 'most tokens to generate', positiveInteger)
    .option('--beams <n>', 'beam count (beam search when > 1)', positiveInteger)
    .option('--length-penalty <x>', 'beam search length penalty exponent', finiteNumber)
    .option('--sample', 'sample instead of greedy decoding')
    .option('--temperature <x>', 'sampling temperature', finiteNumber)
    .option('--top-k <n>', 'sample among the k most likely tokens', positiveInteger)
    .option('--top-p <x>', 'nucleus sampling mass', finiteNumber)
    .option('--seed <n>', 'sampling seed', positiveInteger)
    .option('--repetition-penalty <x>', 'penalty for repeated tokens', finiteNumber)
    .option('--stop <text...>', 'stop strings')
    .option('--bands <list>', 'GeoTIFF bands to read as RGB, 0-based (e.g. 3,2,1)', bandList)
    .addOption(new Option('--provider <name>', 'execution provider').choices(['cpu', 'cuda', 'auto']).default('auto'))
    .option('--threads <n>', 'intra-op threads (0 = all cores)', positiveInteger, 0)
    .option('--dtype <d>', 'graph precision: fp32 (default), fp16, q4f16, quantized, ..., or graph=dtype,... (e.g. vision_encoder=fp32,decoder_model_merged=q4f16)', dtypeOption)
    .option('--json', 'print the whole result as JSON')
    .action(async (flags: GenerateFlags) => {
      const runtime = await VlmRuntime.load(flags.model, { executionProvider: flags.provider, intraOpThreads: flags.threads, dtype: flags.dtype });
      try {
        const options: GenerationOptions = {
          maxNewTokens: flags.maxNewTokens,
          numBeams: flags.beams,
          lengthPenalty: flags.lengthPenalty,
          doSample: flags.sample,
          temperature: flags.temperature,
          topK: flags.topK,
          topP: flags.topP,
          seed: flags.seed,
          repetitionPenalty: flags.repetitionPenalty,
          stopStrings: flags.stop,
        };
        const images = await Promise.all(flags.image.map(async (file) => new Uint8Array(await readFile(file))));
        const [result] = await runtime.generate([
          { prompt: flags.prompt, images, options, decodeOptions: flags.bands ? { bands: flags.bands } : undefined },
        ]);
        process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.text}\n`);
      } finally {
        await runtime.release();
      }
    });
}
