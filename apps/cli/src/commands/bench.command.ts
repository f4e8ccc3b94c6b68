import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { MODEL_DTYPES, runRuntimeBenchmark, type ModelDtype } from '@rsmoe/runtime';
import { packBenchImages, runMeshBenchmark } from '../bench/mesh-benchmark';

const REPO_ROOT = resolve(__dirname, '../../../..');

interface RuntimeBenchFlags {
  model: string;
  image: string;
  prompt: string;
  batches: string;
  newTokens: string;
  rounds: string;
  threads: string;
  provider: 'cpu' | 'cuda';
  dtype: ModelDtype;
  memory: boolean;
  memoryModel: string;
  memoryImage: string;
  memoryPromptTokens: string;
  memoryNewTokens: string;
  meterCheck: boolean;
}

const HF_LLAVA_ONEVISION = resolve(REPO_ROOT, 'models/fixtures/hf-reference/llava-onevision-tiny');

function integerList(value: string): number[] {
  const list = value.split(',').map((item) => Number(item.trim()));
  if (list.some((item) => !Number.isInteger(item) || item < 1)) throw new InvalidArgumentError('expected positive integers, comma-separated');
  return list;
}

interface MeshBenchFlags {
  pack: string;
  redis?: string;
  concurrency: string;
  requests: string;
  rounds: string;
  warmup: string;
  meshWarmup: string;
  batching: boolean;
  batchExpert?: string;
  batchConcurrency: string;
  batchRequests?: string;
  batchRounds: string;
  throughputGoal?: string;
}

function ratio(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a positive number');
  return parsed;
}

function count(value: string, least = 0): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < least) throw new InvalidArgumentError(`expected an integer ≥ ${least}`);
  return parsed;
}

/** `rsmoe bench <target>`: benchmarks that print each hot path next to its floor, measured in the same run. */
export function registerBenchCommand(program: Command): void {
  const bench = program.command('bench').description('benchmarks: each hot path next to its floor, in the same run');
  bench
    .command('runtime')
    .description(
      'libs/runtime generation tokens/s ÷ a bare onnxruntime session loop (goal ≥ 0.95), then the peak RSS of an ' +
        '800-token prompt on a 151,936-token vocabulary in a child process (goal < 50 MB)',
    )
    .option('--model <dir>', 'model directory (e.g. models/fixtures/tiny-llava)', HF_LLAVA_ONEVISION)
    .option('--image <file>', 'image file', resolve(HF_LLAVA_ONEVISION, 'images/airport_32.png'))
    .option('--prompt <text>', 'prompt', 'Describe this aerial image in one sentence.')
    .option('--batches <list>', 'comma-separated batch sizes', '1,4')
    .option('--new-tokens <n>', 'tokens generated per request', '32')
    .option('--rounds <n>', 'timed rounds per batch size (median reported)', '200')
    .option('--threads <n>', 'intra-op threads (0 = all cores)', '1')
    .addOption(new Option('--provider <name>', 'execution provider').choices(['cpu', 'cuda']).default('cpu'))
    .addOption(new Option('--dtype <name>', 'graph precision variant').choices(MODEL_DTYPES).default('fp32'))
    .option('--no-memory', 'skip the memory measurement')
    .option('--memory-model <dir>', 'large-vocabulary model for the memory measurement', resolve(REPO_ROOT, 'models/fixtures/big-vocab-llava'))
    .option('--memory-image <file>', 'image of the memory measurement', resolve(HF_LLAVA_ONEVISION, 'images/airport_32.png'))
    .option('--memory-prompt-tokens <n>', 'prompt length of the memory measurement', '800')
    .option('--memory-new-tokens <n>', 'tokens generated in the memory measurement', '32')
    .option('--no-meter-check', 'skip the bare-loop memory runs (num_logits_to_keep 1: the floor; 0: shows the meter sees B×T×V)')
    .action(async (flags: RuntimeBenchFlags) => {
      const report = await runRuntimeBenchmark(
        {
          modelDir: resolve(flags.model),
          imagePath: resolve(flags.image),
          prompt: flags.prompt,
          batchSizes: flags.batches === '' ? [] : integerList(flags.batches),
          newTokens: count(flags.newTokens, 1),
          rounds: count(flags.rounds, 1),
          intraOpThreads: count(flags.threads),
          executionProvider: flags.provider,
          dtype: flags.dtype,
          memory: flags.memory
            ? {
                modelDir: resolve(flags.memoryModel),
                imagePath: resolve(flags.memoryImage),
                promptTokens: count(flags.memoryPromptTokens, 1),
                newTokens: count(flags.memoryNewTokens, 1),
                checkMeter: flags.meterCheck,
              }
            : undefined,
        },
        (line) => process.stdout.write(`${line}\n`),
      );
      process.stdout.write(`${JSON.stringify({ benchmark: 'runtime', ...report })}\n`);
    });
  bench
    .command('mesh')
    .description(
      'whole-mesh latency, CPU (services + Redis) and Redis commands next to in-process generation and raw BullMQ ' +
        'flows, then one expert with and without micro-batching next to its runtime batched in-process (the ratio\'s ' +
        'ceiling); ends with the issue-15 goals, one line each (met/MISSED)',
    )
    .option('--pack <dir>', 'model pack', resolve(REPO_ROOT, 'models/fixtures/tiny-pack'))
    .option('--redis <url>', 'Redis URL (default: a private redis-server on a free port, so Redis CPU and commands are the mesh\'s alone)')
    .option('--concurrency <list>', 'comma-separated concurrency levels (goals read the lowest and the highest)', '1,8,32')
    .option('--requests <n>', 'requests per level and round', '500')
    .option('--rounds <n>', 'rounds of the mesh and in-process levels, taken in turns (each goal reads its median round)', '3')
    .option('--warmup <n>', 'requests per path before measuring (steady state: V8 has optimised the hot code)', '500')
    .option('--mesh-warmup <n>', 'requests through the mesh before measuring, in chunks of --warmup (its six services settle later than one process)', '3000')
    .option('--no-batching', 'skip the micro-batching comparison')
    .option('--batch-expert <id>', 'expert of the micro-batching comparison (default: the first routed for captions)')
    .option('--batch-concurrency <n>', 'requests in flight in the micro-batching comparison', '16')
    .option('--batch-requests <n>', 'requests per side and round of the micro-batching comparison (default: --requests, at least 1000)')
    .option('--batch-rounds <n>', 'rounds of the micro-batching comparison (the two sides take turns; the median round counts)', '3')
    .option('--throughput-goal <ratio>', 'mesh ÷ in-process throughput goal (default 0.8 on packs under models/fixtures, else 0.9)')
    .action(async (flags: MeshBenchFlags) => {
      const packDir = resolve(flags.pack);
      const requests = count(flags.requests, 1);
      const warmup = count(flags.warmup);
      const report = await runMeshBenchmark({
        packDir,
        redisUrl: flags.redis,
        imagePaths: packBenchImages(packDir),
        concurrency: integerList(flags.concurrency),
        requests,
        rounds: count(flags.rounds, 1),
        warmup,
        meshWarmup: count(flags.meshWarmup),
        batching: flags.batching
          ? {
              expertId: flags.batchExpert,
              concurrency: count(flags.batchConcurrency, 1),
              requests: flags.batchRequests === undefined ? Math.max(requests, 1000) : count(flags.batchRequests, 1),
              warmup: 2 * warmup,
              rounds: count(flags.batchRounds, 1),
            }
          : undefined,
        throughputGoal: flags.throughputGoal === undefined ? (packDir.startsWith(resolve(REPO_ROOT, 'models/fixtures')) ? 0.8 : 0.9) : ratio(flags.throughputGoal),
        log: (line) => process.stdout.write(`${line}\n`),
      });
      process.stdout.write(`${JSON.stringify({ benchmark: 'mesh', ...report })}\n`);
    });
}
