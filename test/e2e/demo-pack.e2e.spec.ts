// The committed demo pack, served by the real mesh, on 200 fresh synthetic scenes (a dataset seed no
// training run uses): the fused caption must name the scene class, and count answers are measured.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeScene, encodePng, generateScene, imageSeed, SCENE_CLASSES, SCENE_NAMES, type SceneClass } from '@rsmoe/synth';
import { postImage, startMesh, type RunningMesh } from './mesh-fixture';

const DEMO_PACK = resolve(__dirname, '../../models/demo');
/** Dataset seed of these scenes: never used for training (tools/train uses its own seeds; see models/demo/README.md). */
const FRESH_SEED = 424_242;
const SCENES = 200;
/** The share of right count answers on these scenes' count questions (measured 62%), with a margin. */
const MIN_COUNT_ACCURACY = 0.5;
/** The same for questions whose answer is not 0 (the harder half: measured 39%). */
const MIN_NONZERO_COUNT_ACCURACY = 0.3;

interface FreshScene {
  sceneClass: SceneClass;
  png: Buffer;
  countQuestions: { question: string; answer: string }[];
}

async function freshScenes(): Promise<FreshScene[]> {
  return Promise.all(
    Array.from({ length: SCENES }, async (_, i) => {
      const sceneClass = SCENE_CLASSES[i % SCENE_CLASSES.length];
      const seed = imageSeed(FRESH_SEED, i);
      const scene = generateScene({ seed, sceneClass });
      const countQuestions = describeScene(scene, seed)
        .vqa.filter((pair) => pair.type === 'count')
        .map(({ question, answer }) => ({ question, answer }));
      return { sceneClass, png: Buffer.from(await encodePng(scene)), countQuestions };
    }),
  );
}

async function inBatches<T, R>(items: readonly T[], size: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(run))));
  return out;
}

describe('the demo pack in the running mesh', { timeout: 240_000 }, () => {
  let running: RunningMesh;
  let scenes: FreshScene[];

  beforeAll(async () => {
    expect(existsSync(`${DEMO_PACK}/pack.json`), 'models/demo/pack.json is committed').toBe(true);
    [running, scenes] = await Promise.all([startMesh({}, DEMO_PACK), freshScenes()]);
  });

  afterAll(async () => {
    await running?.stop();
  });

  it('names the right scene class in the fused caption for at least 80% of 200 fresh scenes', async () => {
    const results = await inBatches(scenes, 8, async (scene) => {
      const { status, body } = await postImage(running.url, '/v1/captions', scene.png);
      expect(status, JSON.stringify(body)).toBe(200);
      const theme = body.experts.find((expert) => expert.expertId === 'theme')!;
      // The scene name must be in the theme expert's part (object and relation sentences may mention a lake
      // or a river of another scene), and in the fused caption, which begins with that part.
      const name = SCENE_NAMES[scene.sceneClass];
      return { right: theme.text.includes(name) && body.caption!.toLowerCase().includes(name), scene, caption: body.caption };
    });
    const share = results.filter((r) => r.right).length / results.length;
    const wrong = results.filter((r) => !r.right).slice(0, 5).map((r) => `${r.scene.sceneClass}: ${r.caption}`);
    process.stdout.write(`demo pack: scene class named in ${(100 * share).toFixed(1)}% of ${SCENES} fresh scenes\n`);
    expect(share, `examples of misses:\n${wrong.join('\n')}`).toBeGreaterThanOrEqual(0.8);
  });

  it(`answers count questions right for at least ${100 * MIN_COUNT_ACCURACY}% of the fresh scenes' questions, asked only of the object expert`, async () => {
    const questions = scenes.flatMap((scene) => scene.countQuestions.map((question) => ({ png: scene.png, ...question })));
    const answers = await inBatches(questions, 8, async ({ png, question, answer }) => {
      const { status, body } = await postImage(running.url, '/v1/vqa', png, { question });
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body.experts.map((expert) => expert.expertId)).toEqual(['object']);
      return { right: body.answer!.trim() === answer, answer, given: body.answer };
    });
    const share = answers.filter((a) => a.right).length / answers.length;
    const nonZero = answers.filter((a) => a.answer !== '0');
    const nonZeroShare = nonZero.filter((a) => a.right).length / nonZero.length;
    process.stdout.write(
      `demo pack: count answers right for ${(100 * share).toFixed(1)}% of ${answers.length} count questions on ${SCENES} fresh scenes (${(100 * nonZeroShare).toFixed(1)}% of the ${nonZero.length} whose answer is not 0)\n`,
    );
    expect(share).toBeGreaterThanOrEqual(MIN_COUNT_ACCURACY);
    expect(nonZeroShare).toBeGreaterThanOrEqual(MIN_NONZERO_COUNT_ACCURACY);
  });
});
