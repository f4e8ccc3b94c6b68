import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerGenerateCommand } from './generate.command';
import { REPO_ROOT } from './cli-test-harness';

const ONEVISION = resolve(REPO_ROOT, 'models/fixtures/hf-reference/llava-onevision-tiny');
const reference = JSON.parse(readFileSync(resolve(ONEVISION, 'reference.json'), 'utf8')) as {
  cases: { id: string; images: string[]; prompt: string; maxNewTokens: number; greedyNewTokenIds: number[] }[];
};

/** Runs `rsmoe generate <args>` in this process; returns what it printed. */
async function generate(args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined });
  registerGenerateCommand(program);
  const printed: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (printed.push(String(chunk)), true));
  try {
    await program.parseAsync(['generate', ...args], { from: 'user' });
  } finally {
    write.mockRestore();
  }
  return printed.join('');
}

afterEach(() => vi.restoreAllMocks());

describe('rsmoe generate', () => {
  it('takes --image more than once, in prompt order: two images give transformers’ own tokens', async () => {
    const twoImages = reference.cases.find((c) => c.id === 'two-images-one-prompt')!;
    const imageArgs = twoImages.images.flatMap((image) => ['--image', resolve(ONEVISION, image)]);
    const args = ['--model', ONEVISION, ...imageArgs, '--prompt', twoImages.prompt, '--max-new-tokens', String(twoImages.maxNewTokens), '--provider', 'cpu', '--threads', '1'];
    const result = JSON.parse(await generate([...args, '--json'])) as { tokenIds: number[] };
    expect(result.tokenIds).toEqual(twoImages.greedyNewTokenIds);
    // The other order is another prompt: other tokens.
    const swapped = ['--model', ONEVISION, ...[...twoImages.images].reverse().flatMap((image) => ['--image', resolve(ONEVISION, image)])];
    const other = JSON.parse(await generate([...swapped, ...args.slice(2 + imageArgs.length), '--json'])) as { tokenIds: number[] };
    expect(other.tokenIds).not.toEqual(twoImages.greedyNewTokenIds);
  });

  it('loads the graphs of --dtype', async () => {
    const single = reference.cases.find((c) => c.id === 'single-image-base-size')!;
    const args = ['--model', ONEVISION, '--image', resolve(ONEVISION, single.images[0]), '--prompt', single.prompt, '--max-new-tokens', '3', '--provider', 'cpu', '--json'];
    const fp16 = JSON.parse(await generate([...args, '--dtype', 'fp16'])) as { tokenIds: number[] };
    // reference.json: fp16 gives the same tokens as fp32 on this case.
    expect(fp16.tokenIds).toEqual(single.greedyNewTokenIds.slice(0, 3));
    // A graph variant the directory does not have is named.
    await expect(generate([...args, '--dtype', 'bnb4'])).rejects.toThrow(/vision_encoder_bnb4\.onnx: cannot be read/);
  });

  it('refuses an unknown --dtype before loading anything', async () => {
    await expect(generate(['--model', ONEVISION, '--prompt', 'x', '--dtype', 'fp8'])).rejects.toThrow(/--dtype: "fp8" is not a dtype/);
    await expect(generate(['--model', ONEVISION, '--prompt', 'x', '--dtype', 'vision_encoder=int4'])).rejects.toThrow(/unknown dtype "int4" for vision_encoder/);
  });
});
