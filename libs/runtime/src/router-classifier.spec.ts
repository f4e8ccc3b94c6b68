import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeScene, encodePng, generateScene, imageSeed, SCENE_CLASSES, SCENE_NAMES } from '@rsmoe/synth';
import { ModelFileError, RuntimeInputError } from './errors';
import { RouterClassifier } from './router-classifier';

const ROUTER_DIR = resolve(__dirname, '../../../models/demo/router');

describe('RouterClassifier on the demo pack router model', () => {
  let classifier: RouterClassifier;
  beforeAll(async () => {
    classifier = await RouterClassifier.load(ROUTER_DIR);
  });
  afterAll(async () => {
    await classifier?.release();
  });

  it('classifies fresh synthetic scenes by class, with the scene hint the prompts use', async () => {
    let right = 0;
    const total = 2 * SCENE_CLASSES.length;
    for (let i = 0; i < total; i++) {
      const sceneClass = SCENE_CLASSES[i % SCENE_CLASSES.length];
      const png = await encodePng(generateScene({ seed: imageSeed(31_337, i), sceneClass }));
      const scene = await classifier.classifyScene(png);
      expect(scene.probability).toBeGreaterThan(0);
      expect(scene.probability).toBeLessThanOrEqual(1);
      if (scene.label === sceneClass) {
        right += 1;
        expect(scene.hint).toBe(SCENE_NAMES[sceneClass]);
      }
    }
    expect(right / total).toBeGreaterThanOrEqual(0.9);
  });

  it('classifies the question types of synthetic questions, and copes with unknown words', async () => {
    const scene = generateScene({ seed: 5, sceneClass: 'parking_lot' });
    const pairs = describeScene(scene, 5).vqa;
    for (const pair of pairs) expect((await classifier.classifyQuestion(pair.question)).label).toBe(pair.type);
    expect(classifier.questionLabels).toEqual(['presence', 'count', 'comparison', 'rural_urban', 'area']);
    expect((await classifier.classifyQuestion('How many zeppelins are there?')).label).toBe('count');
    expect(classifier.questionLabels).toContain((await classifier.classifyQuestion('')).label);
  });

  it('refuses an image it cannot decode with a runtime input error', async () => {
    await expect(classifier.classifyScene(new Uint8Array([1, 2, 3, 4]))).rejects.toBeInstanceOf(RuntimeInputError);
  });

  it('names the file when router.json is missing or wrong', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'router-'));
    await expect(RouterClassifier.load(dir)).rejects.toBeInstanceOf(ModelFileError);
    writeFileSync(join(dir, 'router.json'), JSON.stringify({ scene_classifier: { file: 'x.onnx' } }));
    await expect(RouterClassifier.load(dir)).rejects.toThrow(/router.json: question_classifier: expected an object/);
  });
});
