import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ExecutionProviderError,
  InvalidGenerationRequestError,
  ModelFileError,
  ModelSignatureError,
  VlmRuntime,
  type GenerationRequest,
} from './index';
import {
  SHARED_DATASETS_DIR,
  TINY_MODEL_DIR,
  maxAbsDifference,
  readGolden,
  readGoldenImage,
} from '../test-support/fixture';

const golden = readGolden();
const quiet = { info: () => undefined, warn: () => undefined };

function goldenRequest(index: number, options: GenerationRequest['options'] = {}): GenerationRequest {
  const goldenCase = golden.cases[index];
  return {
    prompt: goldenCase.prompt,
    images: [readGoldenImage(goldenCase)],
    options: { maxNewTokens: golden.max_new_tokens, ...options },
  };
}

describe('VlmRuntime on the tiny LLaVA fixture', () => {
  let runtime: VlmRuntime;

  beforeAll(async () => {
    runtime = await VlmRuntime.load(TINY_MODEL_DIR, { executionProvider: 'cpu', intraOpThreads: 1, logger: quiet });
  });
  afterAll(async () => {
    await runtime?.release();
  });

  it('renders the chat template and tokenises exactly as the exporter did', async () => {
    for (const goldenCase of golden.cases) {
      const [features] = await runtime.encodeImages([readGoldenImage(goldenCase)]);
      expect(runtime.encodePrompt(goldenCase.prompt, [features])).toEqual(goldenCase.input_ids);
    }
  });

  it('preprocesses the golden images into the same pixel values as torch', async () => {
    for (const goldenCase of golden.cases) {
      const [pixels] = await runtime.preprocessImages([readGoldenImage(goldenCase)]);
      expect(maxAbsDifference(pixels, goldenCase.pixel_values)).toBeLessThan(1e-6);
    }
  });

  it('reproduces the first-step logits to 1e-4', async () => {
    const logits = await runtime.nextTokenLogits(golden.cases.map((_, index) => goldenRequest(index)));
    logits.forEach((row, index) => {
      expect(maxAbsDifference(row, golden.cases[index].first_step_logits)).toBeLessThan(1e-4);
    });
  });

  it('reproduces the golden greedy tokens exactly, one request at a time', async () => {
    for (const [index, goldenCase] of golden.cases.entries()) {
      const [result] = await runtime.generate([goldenRequest(index)]);
      expect(result.tokenIds).toEqual(goldenCase.greedy_tokens);
      expect(result.text).toBe(goldenCase.greedy_text);
      expect(result.finishReason).toBe('length');
      expect(result.promptTokens).toBe(goldenCase.input_ids.length);
      expect(result.generatedTokens).toBe(golden.max_new_tokens);
    }
  });

  it('gives the same tokens with the token-embedding cache off', async () => {
    const uncached = await VlmRuntime.load(TINY_MODEL_DIR, { executionProvider: 'cpu', intraOpThreads: 1, embeddingCacheTokens: 0, logger: quiet });
    try {
      const results = await uncached.generate(golden.cases.map((_, index) => goldenRequest(index)));
      results.forEach((result, index) => expect(result.tokenIds).toEqual(golden.cases[index].greedy_tokens));
    } finally {
      await uncached.release();
    }
  });

  it('gives every request of a padded batch exactly the tokens it gets alone', async () => {
    // Prompts of three different lengths, so two rows are left-padded.
    const order = [2, 0, 1, 0];
    const results = await runtime.generate(order.map((index) => goldenRequest(index)));
    results.forEach((result, row) => expect(result.tokenIds).toEqual(golden.cases[order[row]].greedy_tokens));
  });

  it('lets rows that finish early leave the batch: the rows left still get exactly their tokens alone', async () => {
    // Budgets of 1, 3, all and 2 tokens: rows leave at steps 1, 2 and 3, in an order unlike their positions.
    const budgets = [1, 3, golden.max_new_tokens, 2];
    const order = [2, 0, 1, 0];
    const results = await runtime.generate(order.map((index, row) => goldenRequest(index, { maxNewTokens: budgets[row] })));
    results.forEach((result, row) => {
      expect(result.tokenIds).toEqual(golden.cases[order[row]].greedy_tokens.slice(0, budgets[row]));
      if (budgets[row] < golden.cases[order[row]].greedy_tokens.length) expect(result.finishReason).toBe('length');
    });
  });

  it("scores candidate answers: a one-token candidate's log-probability is transformers' first-step log-softmax", async () => {
    const { first_step_logits: first, greedy_tokens: greedy } = golden.cases[0];
    const max = Math.max(...first);
    const logSumExp = max + Math.log(first.reduce((sum, value) => sum + Math.exp(value - max), 0));
    const tokens = [greedy[0], (greedy[0] + 7) % first.length];
    const words = tokens.map((token) => runtime.decodeTokens([token]));
    // Only tokens the tokenizer reads back as themselves make a fair one-token candidate.
    const request = goldenRequest(0);
    const scores = await runtime.scoreCandidates(request, words, { endOfAnswer: false });
    scores.forEach((score, i) => expect(Math.abs(score - (first[tokens[i]] - logSumExp))).toBeLessThan(1e-4));
    expect(scores[0]).toBeGreaterThan(scores[1]);
  });

  it('scores candidates of different lengths in one batch exactly as one at a time, the end of the answer included', async () => {
    const request = goldenRequest(1);
    const candidates = ['main', 'main highway', 'white land meadow main'];
    const together = await runtime.scoreCandidates(request, candidates);
    const alone = await Promise.all(candidates.map(async (candidate) => (await runtime.scoreCandidates(request, [candidate]))[0]));
    together.forEach((score, i) => expect(Math.abs(score - alone[i])).toBeLessThan(1e-4));
    // With the end of the answer the score is lower than the prefix's alone (one more probability < 1).
    const [prefixOnly] = await runtime.scoreCandidates(request, ['main'], { endOfAnswer: false });
    expect(together[0]).toBeLessThan(prefixOnly);
  });

  it('reports timings for every phase', async () => {
    const [result] = await runtime.generate([goldenRequest(0)]);
    const { timings } = result;
    for (const value of Object.values(timings)) expect(value).toBeGreaterThanOrEqual(0);
    expect(timings.visionEncodeMs).toBeGreaterThan(0);
    expect(timings.prefillMs).toBeGreaterThan(0);
    expect(timings.decodeMs).toBeGreaterThan(0);
    expect(timings.timeToFirstTokenMs).toBeLessThanOrEqual(timings.totalMs);
  });

  it('shares image features: encoding once and passing the features gives the same tokens', async () => {
    const [features] = await runtime.encodeImages([readGoldenImage(golden.cases[1])]);
    expect(features.encoderId).toBe(runtime.encoderId);
    expect(features.data.length).toBe(features.tokens * features.hiddenSize);
    const [result] = await runtime.generate([
      { prompt: golden.cases[1].prompt, imageFeatures: [features], options: { maxNewTokens: golden.max_new_tokens } },
    ]);
    expect(result.tokenIds).toEqual(golden.cases[1].greedy_tokens);
    expect(result.timings.visionEncodeMs).toBe(0);
  });

  it('rejects features from another encoder', async () => {
    const [features] = await runtime.encodeImages([readGoldenImage(golden.cases[0])]);
    await expect(
      runtime.generate([{ prompt: 'describe the image .', imageFeatures: [{ ...features, encoderId: 'f'.repeat(64) }] }]),
    ).rejects.toBeInstanceOf(InvalidGenerationRequestError);
  });

  it('beam search with one beam equals greedy decoding', async () => {
    for (const [index, goldenCase] of golden.cases.entries()) {
      const result = await runtime.beamSearch(goldenRequest(index, { numBeams: 1 }));
      expect(result.tokenIds).toEqual(goldenCase.greedy_tokens);
    }
  });

  it('beam search with several beams finds a sequence at least as likely as greedy', async () => {
    const request = goldenRequest(1, { numBeams: 4, lengthPenalty: 0, maxNewTokens: 8 });
    const [beam] = await runtime.generate([request]);
    const [greedy] = await runtime.generate([goldenRequest(1, { maxNewTokens: 8 })]);
    const logProbability = async (tokens: number[]): Promise<number> => {
      // Score a continuation by teacher forcing through the raw prompt + tokens.
      let total = 0;
      for (let i = 0; i < tokens.length; i++) {
        const prompt = `${golden.cases[1].rendered_prompt} ${runtime.decodeTokens(tokens.slice(0, i))}`;
        const [logits] = await runtime.nextTokenLogits([{ prompt, images: request.images, rawPrompt: true }]);
        const max = Math.max(...logits);
        const logSum = max + Math.log(logits.reduce((sum, value) => sum + Math.exp(value - max), 0));
        total += logits[tokens[i]] - logSum;
      }
      return total;
    };
    expect(beam.tokenIds).toHaveLength(8);
    expect(await logProbability(beam.tokenIds)).toBeGreaterThanOrEqual((await logProbability(greedy.tokenIds)) - 1e-4);
  });

  it('samples reproducibly from a seed, and top-k 1 sampling is greedy', async () => {
    const sampled = (seed: number) => runtime.generate([goldenRequest(0, { doSample: true, temperature: 1.5, seed })]);
    const [a] = await sampled(7);
    const [b] = await sampled(7);
    const others = await Promise.all([1, 2, 3].map(sampled));
    expect(a.tokenIds).toEqual(b.tokenIds);
    expect(others.some(([other]) => other.tokenIds.join() !== a.tokenIds.join())).toBe(true);
    const [topOne] = await runtime.generate([goldenRequest(0, { doSample: true, topK: 1, seed: 3 })]);
    expect(topOne.tokenIds).toEqual(golden.cases[0].greedy_tokens);
    const [nucleus] = await runtime.generate([goldenRequest(0, { doSample: true, topP: 1e-6, seed: 3 })]);
    expect(nucleus.tokenIds).toEqual(golden.cases[0].greedy_tokens);
  });

  it('a repetition penalty breaks the greedy loop of case 1', async () => {
    const distinct = (tokens: number[]) => new Set(tokens).size;
    const [plain] = await runtime.generate([goldenRequest(1)]);
    const [penalised] = await runtime.generate([goldenRequest(1, { repetitionPenalty: 1.5 })]);
    expect(penalised.tokenIds).not.toEqual(plain.tokenIds);
    expect(distinct(penalised.tokenIds)).toBeGreaterThan(distinct(plain.tokenIds));
  });

  it('stops on a stop string and cuts it from the text; stops at max_new_tokens', async () => {
    const stop = golden.cases[0].greedy_text.split(' ')[3];
    const [stopped] = await runtime.generate([goldenRequest(0, { stopStrings: [stop] })]);
    expect(stopped.finishReason).toBe('stop_string');
    expect(stopped.text).toBe(golden.cases[0].greedy_text.slice(0, golden.cases[0].greedy_text.indexOf(stop)).trim());
    const [short] = await runtime.generate([goldenRequest(0, { maxNewTokens: 3 })]);
    expect(short.tokenIds).toEqual(golden.cases[0].greedy_tokens.slice(0, 3));
    expect(short.finishReason).toBe('length');
  });

  it('stops on the end-of-sequence token', async () => {
    // Raw prompt whose first-step logits favour no special token; force EOS by making it the stop id list.
    const eosRuntime = Object.create(runtime) as VlmRuntime;
    Object.defineProperty(eosRuntime, 'generationConfig', {
      value: { ...runtime.generationConfig, eosTokenIds: [golden.cases[0].greedy_tokens[2]] },
    });
    const [result] = await eosRuntime.generate([goldenRequest(0)]);
    expect(result.finishReason).toBe('eos');
    expect(result.tokenIds).toEqual(golden.cases[0].greedy_tokens.slice(0, 3));
    const beam = await eosRuntime.beamSearch(goldenRequest(0, { numBeams: 1 }));
    expect(beam.tokenIds).toEqual(golden.cases[0].greedy_tokens.slice(0, 3));
    expect(beam.finishReason).toBe('eos');
  });

  it('decodes a real UCM TIFF and captions it', async () => {
    const tiff = new Uint8Array(await readFile(join(SHARED_DATASETS_DIR, 'ucm-captions-sample/images/1092.tif')));
    const [result] = await runtime.generate([{ prompt: 'describe the image .', images: [tiff], options: { maxNewTokens: 4 } }]);
    expect(result.generatedTokens).toBe(4);
    expect(result.text.split(' ')).toHaveLength(4);
  });

  describe('deadline and cancellation', () => {
    /** A signal that reads as aborted from its `reads`-th look on: a cancel at an exact decoding step. */
    const abortsAfter = (reads: number, reason: Error = new Error('client went away')): AbortSignal => {
      let seen = 0;
      return {
        get aborted() {
          seen += 1;
          return seen > reads;
        },
        reason,
      } as AbortSignal;
    };

    it('stops a cancelled row at the step it is cancelled, while the rest of the batch generates on', async () => {
      const alone = golden.cases.map((goldenCase) => goldenCase.greedy_tokens);
      // One look before the search, then one per step: cancelled after its 3rd token.
      const results = await runtime.generate([goldenRequest(0), { ...goldenRequest(1), signal: abortsAfter(3) }, goldenRequest(2)]);
      expect(results[1].finishReason).toBe('cancelled');
      expect(results[1].tokenIds).toEqual(alone[1].slice(0, 3));
      expect(results[1].text).toBe(runtime.decodeTokens(alone[1].slice(0, 3)).trim());
      expect(results[0].tokenIds).toEqual(alone[0]);
      expect(results[2].tokenIds).toEqual(alone[2]);
      expect(results[0].finishReason).toBe('length');
    });

    it('does not decode a request already past its deadline, and stops one at its deadline', async () => {
      const [expired, neighbour] = await runtime.generate([{ ...goldenRequest(0), deadlineUnixMs: Date.now() - 1 }, goldenRequest(1)]);
      expect(expired).toMatchObject({ finishReason: 'deadline', tokenIds: [], generatedTokens: 0, text: '' });
      expect(neighbour.tokenIds).toEqual(golden.cases[1].greedy_tokens);

      const timedOut = new AbortController();
      timedOut.abort(Object.assign(new Error('deadline'), { name: 'TimeoutError' }));
      const [aborted] = await runtime.generate([{ ...goldenRequest(0), signal: timedOut.signal }]);
      expect(aborted.finishReason).toBe('deadline');
      expect(aborted.generatedTokens).toBe(0);
    });

    it('ends beam search on cancel with the best hypothesis so far', async () => {
      const [full] = await runtime.generate([goldenRequest(1, { numBeams: 3, maxNewTokens: 12 })]);
      expect(full.finishReason).not.toBe('cancelled');
      const [cut] = await runtime.generate([{ ...goldenRequest(1, { numBeams: 3, maxNewTokens: 12 }), signal: abortsAfter(6) }]);
      expect(cut.finishReason).toBe('cancelled');
      expect(cut.generatedTokens).toBeGreaterThan(0);
      expect(cut.generatedTokens).toBeLessThan(full.generatedTokens);
    });

    it('stops at an AbortSignal.timeout: timers fire between decoding steps', async () => {
      // onnxruntime-node starts every session run from setImmediate, so timers (this one, BullMQ's lock
      // renewal) run between steps; the decode loop needs no yielding of its own.
      const [result] = await runtime.generate([{ ...goldenRequest(0, { maxNewTokens: 200 }), signal: AbortSignal.timeout(1) }]);
      expect(result.finishReason).toBe('deadline');
      expect(result.generatedTokens).toBeLessThan(200);
    });
  });

  it('rejects bad requests with typed errors', async () => {
    await expect(runtime.generate([goldenRequest(0, { maxNewTokens: 0 })])).rejects.toBeInstanceOf(InvalidGenerationRequestError);
    await expect(runtime.generate([goldenRequest(0, { temperature: -1, doSample: true })])).rejects.toThrow(/temperature/);
    await expect(runtime.generate([goldenRequest(0, { numBeams: 99 })])).rejects.toThrow(/numBeams/);
    await expect(runtime.generate([{ prompt: 'what is <image> here ?' }])).rejects.toThrow(/placeholder/);
    await expect(runtime.generate([{ ...goldenRequest(0), prompt: 'a <image> b' }])).rejects.toThrow(/2 image placeholders but 1 image/);
    await expect(runtime.generate([{ prompt: 'near '.repeat(300) }])).rejects.toThrow(/context/);
  });
});

describe('VlmRuntime loading checks', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rsmoe-runtime-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function brokenCopy(name: string, breakIt: (modelDir: string) => Promise<void>): Promise<string> {
    const modelDir = join(dir, name);
    await cp(TINY_MODEL_DIR, modelDir, { recursive: true });
    await breakIt(modelDir);
    return modelDir;
  }

  it('names a missing ONNX file', async () => {
    const modelDir = await brokenCopy('missing-onnx', (d) => rm(join(d, 'onnx/embed_tokens.onnx')));
    const error = await VlmRuntime.load(modelDir, { executionProvider: 'cpu', logger: quiet }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFileError);
    expect((error as ModelFileError).file).toMatch(/embed_tokens\.onnx$/);
  });

  it('names a missing or malformed JSON file and field', async () => {
    const missing = await brokenCopy('missing-config', (d) => rm(join(d, 'generation_config.json')));
    await expect(VlmRuntime.load(missing, { executionProvider: 'cpu', logger: quiet })).rejects.toThrow(/generation_config\.json/);
    const malformed = await brokenCopy('bad-json', (d) => writeFile(join(d, 'config.json'), '{"model_type": '));
    await expect(VlmRuntime.load(malformed, { executionProvider: 'cpu', logger: quiet })).rejects.toBeInstanceOf(ModelFileError);
    const wrongCount = await brokenCopy('wrong-count', async (d) => {
      const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'));
      config.image_seq_length = 5;
      await writeFile(join(d, 'config.json'), JSON.stringify(config));
    });
    await expect(VlmRuntime.load(wrongCount, { executionProvider: 'cpu', logger: quiet })).rejects.toThrow(
      /vision_encoder\.onnx: image features have shape \[1,16,64\]; expected \[1,5,64\].*image_seq_length/,
    );
  });

  it('needs no hand-added image_seq_length: the count follows from the vision tower', async () => {
    const noField = await brokenCopy('no-field', async (d) => {
      const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'));
      delete config.image_seq_length;
      await writeFile(join(d, 'config.json'), JSON.stringify(config));
    });
    const derived = await VlmRuntime.load(noField, { executionProvider: 'cpu', logger: quiet });
    const [result] = await derived.generate([goldenRequest(0)]);
    expect(result.tokenIds).toEqual(golden.cases[0].greedy_tokens);
    await derived.release();
  });

  it('names a tensor whose name does not match the layout', async () => {
    // Same-length rename inside the protobuf keeps the graph valid while breaking the contract.
    const modelDir = await brokenCopy('renamed-input', async (d) => {
      const file = join(d, 'onnx/embed_tokens.onnx');
      const bytes = await readFile(file);
      await writeFile(file, Buffer.from(bytes.toString('latin1').replaceAll('input_ids', 'token_ids'), 'latin1'));
    });
    const error = await VlmRuntime.load(modelDir, { executionProvider: 'cpu', logger: quiet }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelSignatureError);
    expect((error as Error).message).toMatch(/embed_tokens\.onnx: missing input "input_ids".*token_ids/);
  });

  it('names a decoder with fewer layers than config.json', async () => {
    const modelDir = await brokenCopy('layers', async (d) => {
      const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'));
      config.text_config.num_hidden_layers = 3;
      await writeFile(join(d, 'config.json'), JSON.stringify(config));
    });
    await expect(VlmRuntime.load(modelDir, { executionProvider: 'cpu', logger: quiet })).rejects.toThrow(
      /decoder_model_merged\.onnx: missing input "past_key_values\.2\.key"/,
    );
  });

  it('fails clearly when CUDA is required but unavailable, and falls back to CPU on auto', async () => {
    const cuda = await VlmRuntime.load(TINY_MODEL_DIR, { executionProvider: 'cuda', logger: quiet }).then(
      async (loaded) => {
        // A machine with a working CUDA provider: that is a pass too.
        expect(loaded.executionProvider).toBe('cuda');
        await loaded.release();
        return undefined;
      },
      (error: unknown) => error,
    );
    if (cuda !== undefined) expect(cuda).toBeInstanceOf(ExecutionProviderError);
    const warnings: string[] = [];
    const auto = await VlmRuntime.load(TINY_MODEL_DIR, {
      executionProvider: 'auto',
      logger: { info: () => undefined, warn: (message) => warnings.push(message) },
    });
    expect(['cpu', 'cuda']).toContain(auto.executionProvider);
    if (auto.executionProvider === 'cpu') expect(warnings.join()).toMatch(/fallback to cpu/);
    await auto.release();
  });
});
