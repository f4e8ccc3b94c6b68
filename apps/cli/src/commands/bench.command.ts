import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { runRuntimeBenchmark } from '@rsmoe/runtime';
import { runMeshBenchmark } from '../bench/mesh-benchmark';

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
}

/** `rsmoe bench <target>`: benchmarks that print each hot path next to its floor, measured in the same run. */
export function registerBenchCommand(program: Command): void {
  const bench = program.command('bench').description('benchmarks: each hot path next to its floor, in the same run');
  bench
    .command('runtime')
    .description('generation tokens/s of libs/runtime vs a bare onnxruntime session loop')
    .option('--model <dir>', 'model directory', resolve(REPO_ROOT, 'models/fixtures/tiny-llava'))
    .option('--image <file>', 'image file', resolve(REPO_ROOT, 'models/fixtures/tiny-llava/golden-0.png'))
    .option('--prompt <text>', 'prompt', 'describe the image .')
    .option('--batches <list>', 'comma-separated batch sizes', '1,4,16')
    .option('--new-tokens <n>', 'tokens generated per request', '32')
    .option('--rounds <n>', 'timed rounds per batch size (median reported)', '100')
    .option('--threads <n>', 'intra-op threads (0 = all cores)', '1')
    .addOption(new Option('--provider <name>', 'execution provider').choices(['cpu', 'cuda']).default('cpu'))
    .action(async (flags: RuntimeBenchFlags) => {
      const rows = await runRuntimeBenchmark(
        {
          modelDir: flags.model,
          imagePath: flags.image,
          prompt: flags.prompt,
          batchSizes: flags.batches.split(',').map(Number),
          newTokens: Number(flags.newTokens),
          rounds: Number(flags.rounds),
          intraOpThreads: Number(flags.threads),
          executionProvider: flags.provider,
        },
        (line) => process.stdout.write(`${line}\n`),
      );
      process.stdout.write(`${JSON.stringify({ benchmark: 'runtime', rows })}\n`);
    });
  bench
    .command('mesh')
    .description('whole-mesh latency next to in-process generation and a raw BullMQ flow, in one run')
    .option('--pack <dir>', 'model pack', resolve(REPO_ROOT, 'models/fixtures/tiny-pack'))
    .option('--redis <url>', 'Redis URL', 'redis://127.0.0.1:6379')
    .option('--concurrency <list>', 'comma-separated concurrency levels', '1,8,32')
    .option('--requests <n>', 'requests per level', '200')
    .option('--warmup <n>', 'requests per path before measuring (steady state: V8 has optimised the hot code)', '500')
    .action(async (flags: { pack: string; redis: string; concurrency: string; requests: string; warmup: string }) => {
      const rows = await runMeshBenchmark({
        packDir: flags.pack,
        redisUrl: flags.redis,
        imagePaths: [0, 1, 2].map((index) => resolve(REPO_ROOT, `models/fixtures/tiny-llava/golden-${index}.png`)),
        concurrency: flags.concurrency.split(',').map(Number),
        requests: Number(flags.requests),
        warmup: Number(flags.warmup),
        log: (line) => process.stdout.write(`${line}\n`),
      });
      process.stdout.write(`${JSON.stringify({ benchmark: 'mesh', rows })}\n`);
    });
}
