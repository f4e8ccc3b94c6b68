import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TINY_MODEL_DIR, TINY_PACK_DIR } from '../test-support/fixtures';
import { expertDtype, expertsInOrder, loadPackManifest, PackManifestError, parsePackManifest, toListExpertsResponse } from './index';

const tmp = mkdtempSync(join(tmpdir(), 'rsmoe-pack-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function writePack(name: string, manifest: unknown): string {
  const dir = join(tmp, name);
  mkdirSync(join(dir, 'model-a'), { recursive: true });
  writeFileSync(join(dir, 'pack.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  return dir;
}

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof PackManifestError) return error.problems;
    throw error;
  }
  throw new Error('expected a PackManifestError');
}

const minimalExpert = { id: 'a', model: 'model-a', prompts: { caption: 'describe the image .' } };

describe('the tiny test pack', () => {
  const pack = loadPackManifest(TINY_PACK_DIR);

  it('has three experts on the tiny fixture, in theme → object → relation order', () => {
    expect(pack.name).toBe('tiny-pack');
    expect(pack.file).toBe(join(TINY_PACK_DIR, 'pack.json'));
    expect(expertsInOrder(pack).map((e) => e.id)).toEqual(['theme', 'object', 'relation']);
    for (const expert of pack.experts) {
      expect(expert.modelDir).toBe(TINY_MODEL_DIR);
      expect(expert.modelName).toBe('tiny-llava');
      expect(expert.prompts.caption).toBeTruthy();
      expect(expert.prompts.vqa).toContain('{question}');
      expect(expert.generation.maxNewTokens).toBe(12);
    }
    expect(new Set(pack.experts.map((e) => e.encoderId))).toEqual(new Set(['tiny-pack@0.1.0/tiny-llava']));
    expect(pack.fusion).toEqual({ caption: 'ordered-dedup', vqa: 'priority', order: ['theme', 'object', 'relation'] });
    expect(pack.router).toEqual({ modelDir: null, questionTypeRules: [] });
  });

  it('gives every question type except other to exactly one expert', () => {
    const owners = pack.experts.flatMap((e) => e.questionTypes.map((t) => [t, e.id] as const));
    expect(Object.fromEntries(owners)).toEqual({ rural_urban: 'theme', area: 'theme', presence: 'object', count: 'object', comparison: 'relation' });
    expect(owners).toHaveLength(5);
  });

  it('only uses prompt words of the fixture vocabulary', async () => {
    const { readFileSync } = await import('node:fs');
    const vocab = JSON.parse(readFileSync(join(TINY_MODEL_DIR, 'tokenizer.json'), 'utf8')).model.vocab as Record<string, number>;
    const words = pack.experts.flatMap((e) => Object.values(e.prompts).flatMap((p) => p!.replace('{question}', '').toLowerCase().split(/\s+/).filter(Boolean)));
    expect(words.filter((w) => !(w in vocab))).toEqual([]);
  });

  it('lists its experts for ListExperts with their queues and the tasks they have prompts for', () => {
    const response = toListExpertsResponse(pack);
    expect(response.packName).toBe('tiny-pack');
    expect(response.experts!.map((e) => [e.id, e.queue, e.model, e.tasks])).toEqual([
      ['theme', 'expert.theme', 'tiny-llava', ['caption', 'vqa']],
      ['object', 'expert.object', 'tiny-llava', ['caption', 'vqa']],
      ['relation', 'expert.relation', 'tiny-llava', ['caption', 'vqa']],
    ]);
  });
});

describe('loadPackManifest', () => {
  it('fills defaults: fusion strategies, manifest order, no router model', () => {
    const pack = loadPackManifest(writePack('minimal', { name: 'p', version: '1', experts: [minimalExpert] }));
    expect(pack.fusion).toEqual({ caption: 'ordered-dedup', vqa: 'priority', order: ['a'] });
    expect(pack.router.modelDir).toBeNull();
    expect(pack.experts[0]).toMatchObject({ description: '', aspects: [], questionTypes: [], generation: {}, encoderId: 'p@1/model-a' });
  });

  it('accepts the path of the manifest file itself', () => {
    const dir = writePack('by-file', { name: 'p', version: '1', experts: [minimalExpert] });
    expect(loadPackManifest(join(dir, 'pack.json')).dir).toBe(dir);
  });

  it('reports every problem at once, with the file name', () => {
    const dir = writePack('bad', {
      name: 'Bad Name',
      version: '1',
      extra: true,
      experts: [
        { id: 'a', model: 'model-a', prompts: { vqa: 'answer .' }, questionTypes: ['count', 'colour'] },
        { id: 'a', model: 'missing-model', prompts: { caption: 'describe {question} {foo}' }, generation: { numBeams: 0 } },
        { id: 'B!', model: 'model-a', prompts: {}, questionTypes: ['presence'] },
      ],
      router: { model: 'no-router', questionTypeRules: [{ type: 'count', pattern: '(' }] },
      fusion: { order: ['a', 'zzz', 'a'] },
    });
    let error: PackManifestError | undefined;
    try {
      loadPackManifest(dir);
    } catch (e) {
      error = e as PackManifestError;
    }
    expect(error).toBeInstanceOf(PackManifestError);
    expect(error!.file).toBe(join(dir, 'pack.json'));
    expect(error!.message).toContain(join(dir, 'pack.json'));
    const expected = [
      /^name: /,
      /^\(root\): Unrecognized key.*extra/,
      /^experts\[0\]\.prompts\.vqa: a vqa prompt must contain \{question\}/,
      /^experts\[0\]\.questionTypes\[1\]: /,
      /^experts\[1\]\.prompts\.caption: unknown placeholder \{foo\}/,
      /^experts\[1\]\.prompts\.caption: a caption prompt cannot contain \{question\}/,
      /^experts\[1\]\.generation\.numBeams: /,
      /^experts\[2\]\.id: /,
      /^experts\[2\]\.prompts: needs at least one prompt/,
      /^router\.questionTypeRules\[0\]\.pattern: invalid regular expression/,
      /^experts\[1\]\.id: duplicate expert id "a"/,
      /^experts\[1\]\.model: directory "missing-model" does not exist/,
      /^router\.model: directory "no-router" does not exist/,
      /^fusion\.order\[1\]: unknown expert "zzz"/,
      /^fusion\.order\[2\]: expert "a" listed twice/,
      /^fusion\.order: must list every expert \(missing: B!\)/,
    ];
    for (const pattern of expected) expect(error!.problems, String(pattern)).toContainEqual(expect.stringMatching(pattern));
  });

  it('says so when the file is missing or not JSON', () => {
    expect(problemsOf(() => loadPackManifest(join(tmp, 'nowhere')))).toEqual(['cannot read the manifest (ENOENT)']);
    expect(problemsOf(() => loadPackManifest(writePack('not-json', '{"name": ')))).toEqual([expect.stringMatching(/^not valid JSON/)]);
  });

  it('refuses an expert with question types but no vqa prompt', () => {
    const dir = writePack('qt', { name: 'p', version: '1', experts: [{ ...minimalExpert, questionTypes: ['count'] }] });
    expect(problemsOf(() => loadPackManifest(dir))).toEqual(['experts[0].questionTypes: an expert with question types needs a vqa prompt']);
  });

  it('refuses two different model directories that would share a default encoder id', () => {
    const dir = writePack('enc', { name: 'p', version: '1', experts: [minimalExpert] });
    mkdirSync(join(dir, 'other', 'model-a'), { recursive: true });
    const manifest = { name: 'p', version: '1', experts: [minimalExpert, { ...minimalExpert, id: 'b', model: 'other/model-a' }] };
    expect(problemsOf(() => parsePackManifest(manifest, dir))).toEqual([expect.stringMatching(/share the default encoder id p@1\/model-a/)]);
    const explicit = { ...manifest, experts: [minimalExpert, { ...minimalExpert, id: 'b', model: 'other/model-a', encoderId: 'enc-b' }] };
    expect(parsePackManifest(explicit, dir).experts.map((e) => e.encoderId)).toEqual(['p@1/model-a', 'enc-b']);
  });

  it('reads an optional dtype per expert: one name for every graph, or one per graph', () => {
    const dir = writePack('dtype', { name: 'p', version: '1', experts: [minimalExpert] });
    const manifest = {
      name: 'p',
      version: '1',
      experts: [
        minimalExpert,
        { ...minimalExpert, id: 'b', dtype: 'fp16' },
        { ...minimalExpert, id: 'c', dtype: { vision_encoder: 'fp32', decoder_model_merged: 'q4f16' } },
      ],
    };
    const experts = parsePackManifest(manifest, dir).experts;
    expect(experts.map((e) => e.dtype)).toEqual([undefined, 'fp16', { vision_encoder: 'fp32', decoder_model_merged: 'q4f16' }]);
    expect(experts.map((e) => expertDtype(e))).toEqual(['fp32', 'fp16', { vision_encoder: 'fp32', decoder_model_merged: 'q4f16' }]);
    expect(experts.map((e) => expertDtype(e, 'q8'))).toEqual(['q8', 'q8', 'q8']);
  });

  it('names a dtype or a graph it does not know', () => {
    const dir = writePack('bad-dtype', { name: 'p', version: '1', experts: [minimalExpert] });
    const manifest = {
      name: 'p',
      version: '1',
      experts: [
        { ...minimalExpert, dtype: 'fp8' },
        { ...minimalExpert, id: 'b', dtype: { vision_encoder: 'int4' } },
        { ...minimalExpert, id: 'c', dtype: { lm_head: 'fp16' } },
        { ...minimalExpert, id: 'd', dtype: {} },
      ],
    };
    expect(problemsOf(() => parsePackManifest(manifest, dir))).toEqual([
      'experts[0].dtype: must be one of fp32, fp16, q4, q4f16, quantized, q8, int8, uint8, bnb4',
      'experts[1].dtype.vision_encoder: must be one of fp32, fp16, q4, q4f16, quantized, q8, int8, uint8, bnb4',
      "experts[2].dtype: Unrecognized key(s) in object: 'lm_head'",
      'experts[3].dtype: names no graph (graphs: vision_encoder, qformer, embed_tokens, decoder_model_merged)',
    ]);
  });
});
