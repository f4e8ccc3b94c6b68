import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPackManifest } from '@rsmoe/contracts';
import { VlmRuntime } from '@rsmoe/runtime';

/**
 * The demo pack made by tools/train/train_demo.py: its manifest loads, its experts share one byte-identical
 * vision encoder, it stays small, and onnxruntime-node through libs/runtime produces the greedy tokens that
 * torch produced at export (golden.json), for one-image prompts and for two-image ones (change captions and
 * change masks: before, then after). DEMO_PACK_DIR points the spec at another pack (the training script uses
 * it to check a variant it has just written).
 */
const PACK_DIR = resolve(process.env.DEMO_PACK_DIR ?? resolve(__dirname, '../../models/demo'));
const MAX_PACK_BYTES = 40 * 1024 * 1024;

interface DemoGoldenCase {
  expert: string;
  /** caption, vqa, or one of RSUniVLM's tasks (classification, change_caption, grounding, ...). */
  task: string;
  /** The first image; `images` lists them all, in prompt order (absent in packs made before two-image cases). */
  image: string;
  images?: string[];
  prompt: string;
  rendered_prompt: string;
  input_ids: number[];
  /** The token limit of this case (absent: golden.json's max_new_tokens). */
  max_new_tokens?: number;
  greedy_tokens: number[];
  greedy_text: string;
}

interface DemoGolden {
  max_new_tokens: number;
  cases: DemoGoldenCase[];
}

function totalBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => {
    const path = join(dir, name);
    const stat = statSync(path);
    return sum + (stat.isDirectory() ? totalBytes(path) : stat.size);
  }, 0);
}

const quiet = { info: () => undefined, warn: () => undefined };

describe('demo model pack', () => {
  const manifest = loadPackManifest(PACK_DIR);
  const golden = JSON.parse(readFileSync(join(PACK_DIR, 'golden.json'), 'utf8')) as DemoGolden;

  it('has a valid manifest whose experts of one encoder id hold one byte-identical vision encoder', () => {
    expect(manifest.experts.length).toBeGreaterThan(0);
    // The caption experts share the stage-1 encoder; the region and pixel experts (when present) share their own.
    const ids = new Set(manifest.experts.map((e) => e.encoderId));
    expect(ids.size).toBeLessThanOrEqual(2);
    for (const id of ids) {
      const [first, ...rest] = manifest.experts
        .filter((e) => e.encoderId === id)
        .map((e) => readFileSync(join(e.modelDir, 'onnx/vision_encoder.onnx')));
      for (const other of rest) expect(other.equals(first)).toBe(true);
    }
    expect(manifest.router.modelDir).not.toBeNull();
    for (const file of ['router.json', 'scene_classifier.onnx', 'question_classifier.onnx', 'tokenizer.json']) {
      expect(statSync(join(manifest.router.modelDir!, file)).isFile(), file).toBe(true);
    }
  });

  it('stays under 40 MB', () => {
    expect(totalBytes(PACK_DIR)).toBeLessThan(MAX_PACK_BYTES);
  });

  it('every alternative manifest next to pack.json loads too', () => {
    for (const name of readdirSync(PACK_DIR).filter((f) => /^pack\..+\.json$/.test(f))) {
      const alternative = loadPackManifest(join(PACK_DIR, name));
      expect(alternative.experts.map((e) => e.modelDir)).toEqual(manifest.experts.map((e) => e.modelDir));
    }
  });

  for (const expert of manifest.experts) {
    it(`expert ${expert.id}: onnxruntime-node gives torch's greedy tokens`, async () => {
      const cases = golden.cases.filter((c) => c.expert === expert.id);
      expect(cases.length).toBeGreaterThan(0);
      const runtime = await VlmRuntime.load(expert.modelDir, { executionProvider: 'cpu', intraOpThreads: 1, logger: quiet });
      try {
        const requests = cases.map((c) => ({
          prompt: c.prompt,
          images: (c.images ?? [c.image]).map((file) => new Uint8Array(readFileSync(join(PACK_DIR, file)))),
          options: { maxNewTokens: c.max_new_tokens ?? golden.max_new_tokens, numBeams: 1, doSample: false },
        }));
        const batched = await runtime.generate(requests);
        for (const [index, c] of cases.entries()) {
          expect(runtime.encodePrompt(c.prompt, await runtime.encodeImages(requests[index].images))).toEqual(c.input_ids);
          expect(batched[index].tokenIds, `${c.task}: ${c.prompt}`).toEqual(c.greedy_tokens);
        }
      } finally {
        await runtime.release();
      }
    }, 60_000);
  }
});
