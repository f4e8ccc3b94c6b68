import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidGenerationRequestError,
  ModelFileError,
  ModelSignatureError,
  VlmRuntime,
  readEncoderId,
  type DtypeChoice,
  type GenerationRequest,
} from '@rsmoe/runtime';

/**
 * What a user with a real export hits: precision variants, float16 graph I/O, external weights, chat
 * templates in any of their files, and clear errors for broken directories.
 */
const FIXTURES = resolve(__dirname, '../../models/fixtures');
const LLAVA = join(FIXTURES, 'hf-reference/llava-onevision-tiny');
const VARIANTS = join(FIXTURES, 'variants');
const quiet = { info: () => {}, warn: () => {} };
const reference = JSON.parse(readFileSync(join(LLAVA, 'reference.json'), 'utf8')) as {
  cases: { id: string; images: string[]; prompt: string; greedyNewTokenIds: number[] }[];
};
const single = reference.cases[0];
const image = new Uint8Array(readFileSync(join(LLAVA, single.images[0])));
const request: GenerationRequest = { prompt: single.prompt, images: [image], options: { maxNewTokens: 10 } };

/** fp16 against fp32 on this fixture: reference.json's onnxCheck measured at most 0.026; allow twice that. */
const FP16_LOGIT_TOLERANCE = 0.05;

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'rsmoe-exports-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function copyOf(name: string, change: (dir: string) => Promise<void> = async () => {}): Promise<string> {
  const dir = join(scratch, name);
  await cp(LLAVA, dir, { recursive: true });
  await change(dir);
  return dir;
}

function load(dir: string, dtype?: DtypeChoice): Promise<VlmRuntime> {
  return VlmRuntime.load(dir, { executionProvider: 'cpu', intraOpThreads: 1, logger: quiet, dtype });
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('precision variants', () => {
  let fp32: VlmRuntime;
  let fp32Logits: Float32Array;
  beforeAll(async () => {
    fp32 = await load(LLAVA);
    [fp32Logits] = await fp32.nextTokenLogits([request]);
  });
  afterAll(() => fp32?.release());

  it.each(['fp16', 'q4f16', 'quantized', 'q8'] as const)('%s (shipped with the fixture) loads and generates', async (dtype) => {
    const runtime = await load(LLAVA, dtype);
    try {
      const suffix = dtype === 'q8' ? 'quantized' : dtype;
      expect(runtime.files.decoder).toMatch(new RegExp(`decoder_model_merged_${suffix}\\.onnx$`));
      const [result] = await runtime.generate([request]);
      expect(result.generatedTokens).toBe(10);
      if (dtype === 'fp16') {
        const [logits] = await runtime.nextTokenLogits([request]);
        expect(maxDiff(logits, fp32Logits)).toBeLessThan(FP16_LOGIT_TOLERANCE);
        expect(result.tokenIds).toEqual(single.greedyNewTokenIds);
      }
    } finally {
      await runtime.release();
    }
  });

  it.each(['q4', 'bnb4', 'int8', 'uint8'] as const)('%s follows the naming rule (a decoder made here), chosen per graph', async (dtype) => {
    const dir = await copyOf(`dtype-${dtype}`, (d) =>
      cp(join(VARIANTS, `decoder-dtypes/onnx/decoder_model_merged_${dtype}.onnx`), join(d, `onnx/decoder_model_merged_${dtype}.onnx`)),
    );
    const runtime = await load(dir, { decoder_model_merged: dtype });
    try {
      expect(runtime.files.decoder).toMatch(new RegExp(`decoder_model_merged_${dtype}\\.onnx$`));
      expect(runtime.files.visionEncoder).toMatch(/vision_encoder\.onnx$/);
      const [result] = await runtime.generate([request]);
      expect(result.generatedTokens).toBe(10);
    } finally {
      await runtime.release();
    }
  });

  it('float16 graph inputs, outputs and KV cache (keep_io_types=False exports) are converted at the edges', async () => {
    const dir = await copyOf('fp16-io', async (d) => {
      for (const graph of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) {
        await cp(join(VARIANTS, `fp16-io/onnx/${graph}_fp16.onnx`), join(d, `onnx/${graph}_fp16.onnx`));
      }
    });
    const runtime = await load(dir, 'fp16');
    try {
      const [logits] = await runtime.nextTokenLogits([request]);
      expect(maxDiff(logits, fp32Logits)).toBeLessThan(FP16_LOGIT_TOLERANCE);
      const [result] = await runtime.generate([{ ...request, options: { maxNewTokens: 10, numBeams: 2 } }]);
      expect(result.generatedTokens).toBeGreaterThan(0);
      const [greedy] = await runtime.generate([request]);
      expect(greedy.generatedTokens).toBe(10);
    } finally {
      await runtime.release();
    }
  });

  it('an unknown dtype or a missing variant file is an error naming it', async () => {
    await expect(load(LLAVA, 'fp8' as never)).rejects.toThrow(/unknown dtype "fp8".*known: fp32, fp16/);
    const error = await load(LLAVA, 'bnb4').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFileError);
    expect((error as ModelFileError).file).toMatch(/vision_encoder_bnb4\.onnx$/);
  });
});

describe('num_logits_to_keep (Qwen2 vocabulary of 151,936)', () => {
  it('is fed to a decoder that has it: one row of logits per request, whatever the prompt length', async () => {
    const runtime = await load(join(FIXTURES, 'big-vocab-llava'));
    try {
      expect(runtime.config.vocabSize).toBe(151_936);
      const long = { ...request, prompt: `${'field road river '.repeat(60)}${single.prompt}`, options: { maxNewTokens: 4 } };
      const logits = await runtime.nextTokenLogits([request, long]);
      expect(logits.map((row) => row.length)).toEqual([151_936, 151_936]);
      // The same last-position logits as the prompt alone: padding and keeping one position change nothing.
      const [alone] = await runtime.nextTokenLogits([long]);
      expect(maxDiff(logits[1], alone)).toBeLessThan(1e-5);
      const [result] = await runtime.generate([long]);
      expect(result.tokenIds).toHaveLength(4);
    } finally {
      await runtime.release();
    }
  });
});

describe('encoder identity', () => {
  it('covers external data: same graph file, other weights, other id; same files, same id', async () => {
    const withExternal = (name: string, tweak: boolean) =>
      copyOf(name, async (d) => {
        await cp(join(VARIANTS, 'external-data/onnx/vision_encoder.onnx'), join(d, 'onnx/vision_encoder.onnx'));
        const weights = await readFile(join(VARIANTS, 'external-data/onnx/vision_encoder.onnx_data'));
        if (tweak) weights.writeFloatLE(weights.readFloatLE(4096) + 0.5, 4096);
        await writeFile(join(d, 'onnx/vision_encoder.onnx_data'), weights);
      });
    const a = await withExternal('external-a', false);
    const b = await withExternal('external-b', true);
    const a2 = await withExternal('external-a2', false);
    const [idA, idB, idA2] = await Promise.all([readEncoderId(a), readEncoderId(b), readEncoderId(a2)]);
    expect(idA).not.toBe(idB);
    expect(idA).toBe(idA2);
    const runtime = await load(a);
    try {
      expect(runtime.encoderId).toBe(idA);
      // The weights really come from the external file: the same tokens as the self-contained graph.
      const [result] = await runtime.generate([request]);
      expect(result.tokenIds).toEqual(single.greedyNewTokenIds);
    } finally {
      await runtime.release();
    }
  });

  it('covers the preprocessing: the same encoder with other image settings has another id', async () => {
    const other = await copyOf('other-mean', async (d) => {
      const config = JSON.parse(await readFile(join(d, 'preprocessor_config.json'), 'utf8'));
      config.image_mean = [0.4, 0.4, 0.4];
      await writeFile(join(d, 'preprocessor_config.json'), JSON.stringify(config));
    });
    expect(await readEncoderId(other)).not.toBe(await readEncoderId(LLAVA));
  });
});

describe('files as real repos ship them', () => {
  let expectedIds: number[];
  beforeAll(async () => {
    const runtime = await load(LLAVA);
    expectedIds = runtime.encodePrompt(single.prompt, await runtime.encodeImages([image]));
    await runtime.release();
  });

  it('reads the chat template from chat_template.json or tokenizer_config.json when there is no .jinja', async () => {
    const template = await readFile(join(LLAVA, 'chat_template.jinja'), 'utf8');
    const asJson = await copyOf('template-json', async (d) => {
      await rm(join(d, 'chat_template.jinja'));
      await writeFile(join(d, 'chat_template.json'), JSON.stringify({ chat_template: template }));
    });
    const inTokenizerConfig = await copyOf('template-tokenizer-config', async (d) => {
      await rm(join(d, 'chat_template.jinja'));
      const config = JSON.parse(await readFile(join(d, 'tokenizer_config.json'), 'utf8'));
      await writeFile(join(d, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: template }));
    });
    for (const dir of [asJson, inTokenizerConfig]) {
      const runtime = await load(dir);
      expect(runtime.encodePrompt(single.prompt, await runtime.encodeImages([image]))).toEqual(expectedIds);
      await runtime.release();
    }
  });

  it('reads the image settings from processor_config.json when preprocessor_config.json is absent (transformers 5 layout)', async () => {
    const dir = await copyOf('nested-processor', (d) => rm(join(d, 'preprocessor_config.json')));
    const runtime = await load(dir);
    const [result] = await runtime.generate([request]);
    expect(result.tokenIds).toEqual(single.greedyNewTokenIds);
    await runtime.release();
  });
});

describe('bad model directories and requests get named errors', () => {
  it('no chat template anywhere', async () => {
    const dir = await copyOf('no-template', (d) => rm(join(d, 'chat_template.jinja')));
    await expect(load(dir)).rejects.toThrow(/no chat template: looked in chat_template\.jinja, chat_template\.json and tokenizer_config\.json/);
  });

  it('a template without an image slot', async () => {
    const dir = await copyOf('no-slot', (d) =>
      writeFile(join(d, 'chat_template.jinja'), "{% for m in messages %}<|im_start|>{{ m.role }}\n{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"),
    );
    const error = await load(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFileError);
    expect((error as Error).message).toMatch(/chat_template\.jinja: chat template renders 0 image placeholders/);
  });

  it('a missing graph, and a graph with unexpected inputs', async () => {
    const missing = await copyOf('missing-graph', (d) => rm(join(d, 'onnx/decoder_model_merged.onnx')));
    await expect(load(missing)).rejects.toThrow(/decoder_model_merged\.onnx: cannot be read/);
    const swapped = await copyOf('swapped-graph', (d) => cp(join(d, 'onnx/decoder_model_merged.onnx'), join(d, 'onnx/embed_tokens.onnx')));
    const error = await load(swapped).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelSignatureError);
    expect((error as Error).message).toMatch(/embed_tokens\.onnx: missing input "input_ids"/);
  });

  it('more images than placeholders, and a prompt smuggling the image token', async () => {
    const runtime = await load(LLAVA);
    try {
      const raw = '<|im_start|>user\n<image>\nwhat?<|im_end|>\n<|im_start|>assistant\n';
      await expect(runtime.generate([{ prompt: raw, images: [image, image], rawPrompt: true }])).rejects.toThrow(
        /2 image\(s\) were given but the prompt holds 1 image placeholder/,
      );
      await expect(runtime.generate([{ prompt: 'look <image> here', images: [image] }])).rejects.toBeInstanceOf(InvalidGenerationRequestError);
    } finally {
      await runtime.release();
    }
  });
});

describe('beam search honours stop strings', () => {
  it('stops a beam at a stop string and cuts it from the text', async () => {
    const runtime = await load(LLAVA);
    try {
      const options = { maxNewTokens: 10, numBeams: 3 };
      const [full] = await runtime.generate([{ ...request, options }]);
      expect(full.finishReason).toBe('length');
      const text = runtime.decodeTokens(full.tokenIds);
      const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2);
      const [stopped] = await runtime.generate([{ ...request, options: { ...options, stopStrings: [stop] } }]);
      expect(stopped.finishReason).toBe('stop_string');
      expect(stopped.generatedTokens).toBeLessThan(10);
      expect(stopped.text).not.toContain(stop);
      expect(runtime.decodeTokens(stopped.tokenIds)).toContain(stop);
    } finally {
      await runtime.release();
    }
  });
});
