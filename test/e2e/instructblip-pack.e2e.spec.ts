import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisKeys } from '@rsmoe/contracts';
import { VlmRuntime } from '@rsmoe/runtime';
import { postImage, startMesh, type RunningMesh } from './mesh-fixture';

const REPO_ROOT = resolve(__dirname, '../..');
/** transformers' own tiny InstructBLIP (random weights): RS-MoE's layout, with its outputs in reference.json. */
const INSTRUCTBLIP_DIR = join(REPO_ROOT, 'models/fixtures/hf-reference/instructblip-tiny');
const IMAGE = readFileSync(join(INSTRUCTBLIP_DIR, 'images/airport_32.png'));
/** Two instructions of reference.json on the same image: each expert's Q-Former gets its own. */
const INSTRUCTIONS = { scene: 'Describe this aerial image in one sentence.', counts: 'How many buildings are there?' };
const MAX_NEW_TOKENS = 10;

/**
 * RS-MoE's architecture through the whole mesh: two expert directories of an InstructBLIP export, turned
 * into a pack by `rsmoe pack init` and served by `rsmoe start`'s launcher as real processes. Both experts
 * share one vision encoding of the image (one feature-cache entry under the encoder's content hash); each
 * runs its own Q-Former with its own instruction on those features, and says exactly what the runtime says
 * in process, which the parity suite holds to transformers' tokens.
 */
describe('an RS-MoE (InstructBLIP) pack from rsmoe pack init, end to end', { timeout: 120_000 }, () => {
  let root: string;
  let running: RunningMesh;
  let runtime: VlmRuntime;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'rsmoe-blip-pack-'));
    const dirs = Object.keys(INSTRUCTIONS).map((name) => {
      const dir = join(root, name);
      cpSync(INSTRUCTBLIP_DIR, dir, { recursive: true, filter: (src) => !/(images|reference\.json)$/.test(src) });
      return dir;
    });
    const init = spawnSync(process.execPath, ['bin/rsmoe.cjs', 'pack', 'init', ...dirs], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(init.status, init.stderr).toBe(0);
    // The user's one edit: each expert's instruction and length.
    const manifestFile = join(root, 'pack.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as {
      experts: { id: keyof typeof INSTRUCTIONS; prompts: Record<string, string>; generation?: Record<string, unknown> }[];
    };
    for (const expert of manifest.experts) {
      expert.prompts.caption = INSTRUCTIONS[expert.id];
      expert.generation = { ...expert.generation, maxNewTokens: MAX_NEW_TOKENS, numBeams: 1, doSample: false };
    }
    writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));

    running = await startMesh({}, root);
    runtime = await VlmRuntime.load(dirs[0], { executionProvider: 'cpu', intraOpThreads: 1, logger: { info: () => undefined, warn: () => undefined } });
  });

  afterAll(async () => {
    await runtime?.release();
    await running?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('fuses two experts that share one encoding and each follow their own instruction', async () => {
    const expected = await runtime.generate(
      Object.values(INSTRUCTIONS).map((prompt) => ({ prompt, images: [new Uint8Array(IMAGE)], options: { maxNewTokens: MAX_NEW_TOKENS, numBeams: 1 } })),
    );
    // The instructions reach the Q-Former: different instructions, different query embeddings, other tokens.
    expect(expected[0].tokenIds).not.toEqual(expected[1].tokenIds);

    const response = await postImage(running.url, '/v1/captions', IMAGE);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    const byExpert = new Map(response.body.experts.map((expert) => [expert.expertId, expert]));
    expect(byExpert.get('scene')).toMatchObject({ status: 'ok', text: expected[0].text, promptTokens: expected[0].promptTokens });
    expect(byExpert.get('counts')).toMatchObject({ status: 'ok', text: expected[1].text, promptTokens: expected[1].promptTokens });
    // One expert encoded the image; the other waited for that encoding and read it from the cache.
    expect(response.body.experts.filter((expert) => expert.featuresCached)).toHaveLength(1);

    const keys = createRedisKeys(running.prefix);
    const sha256 = (await import('node:crypto')).createHash('sha256').update(IMAGE).digest('hex');
    expect(await running.redis.exists(keys.featureCacheKey(sha256, runtime.encoderId, runtime.featurePacking(1)))).toBe(1);
  });
});
