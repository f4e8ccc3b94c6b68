import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '@rsmoe/eval';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { assignSplits, imageSeed, RSVQA_TYPE_NAMES, writeSyntheticDataset, type SynthProgress } from './dataset-writer';
import { describeScene, NOUNS } from './scene-describer';
import { generateScene } from './scene-generator';
import type { SceneClass } from './scene.types';

const COUNT = 30;
const PLURAL_TO_CLASS = new Map(Object.entries(NOUNS).map(([cls, [, plural]]) => [plural, cls]));
const fresh = (name: string) => mkdtempSync(join(tmpdir(), `rsmoe-synth-${name}-`));

/** Every file under dir (relative path → bytes). */
function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(path);
      else out.set(path, readFileSync(join(dir, path)));
    }
  };
  walk('');
  return out;
}

interface GraphLine {
  id: number;
  filename: string;
  seed: number;
  split: string;
  scene_class: SceneClass;
  width: number;
  objects: Array<{ class: string; box: number[]; polygon: number[][] }>;
  captions: { theme: string; objects: string; relations: string };
}

describe('writeSyntheticDataset', () => {
  const dir = fresh('a');
  const progress: SynthProgress[] = [];
  let graphs: GraphLine[];

  beforeAll(async () => {
    const summary = await writeSyntheticDataset({ outDir: dir, count: COUNT, seed: 7, concurrency: 4, onProgress: (p) => progress.push(p) });
    expect(summary.perSplit).toEqual({ train: 24, val: 3, test: 3 });
    expect(summary.changePairs).toBe(2);
    graphs = readFileSync(join(dir, 'scene_graphs.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as GraphLine);
  });

  it('writes one PNG per image and one scene-graph line per image, in order, and reports progress', async () => {
    expect(readdirSync(join(dir, 'images')).sort()).toEqual(Array.from({ length: COUNT }, (_, i) => `${i}.png`).sort());
    const meta = await sharp(join(dir, 'images', '3.png')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 128, 128]);
    expect(graphs.map((g) => g.id)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    for (const g of graphs) {
      expect(g.seed).toBe(imageSeed(7, g.id));
      for (const o of g.objects) expect(o.box.every((v) => v >= 0 && v <= g.width)).toBe(true);
    }
    expect(progress).toHaveLength(COUNT);
    expect(progress.at(-1)).toEqual({ done: COUNT, total: COUNT });
  });

  it('writes Karpathy captions that the eval adapter loads, 5 references per image, with the scene class', async () => {
    const ds = await loadDataset('karpathy', join(dir, 'dataset_synth.json'));
    expect(ds.captions).toHaveLength(COUNT);
    for (const sample of ds.captions) {
      const g = graphs[Number(sample.id)];
      expect(sample.references).toHaveLength(5);
      expect(sample.image).toBe(g.filename);
      expect(sample.category).toBe(g.scene_class);
      expect(sample.split).toBe(g.split);
      expect(sample.references[0].startsWith(g.captions.theme.split(' ')[0])).toBe(true);
    }
    const raw = JSON.parse(readFileSync(join(dir, 'dataset_synth.json'), 'utf8')) as {
      images: Array<{ sentids: number[]; sentences: Array<{ tokens: string[]; sentid: number; imgid: number }>; imgid: number }>;
    };
    for (const im of raw.images) {
      expect(im.sentences.map((s) => s.sentid)).toEqual(im.sentids);
      expect(im.sentences.every((s) => s.imgid === im.imgid && s.tokens.length > 0 && !s.tokens.includes('.'))).toBe(true);
    }
  });

  it('writes RSVQA files that the eval adapter loads; every answer agrees with the scene graph of its image', async () => {
    const ds = await loadDataset('rsvqa', join(dir, 'synth'));
    expect(ds.vqa.length).toBeGreaterThan(COUNT);
    const questions = JSON.parse(readFileSync(join(dir, 'synth_questions.json'), 'utf8')) as {
      questions: Array<{ id: number; img_id: number; split: string }>;
    };
    const imgOf = new Map(questions.questions.map((q) => [String(q.id), q]));
    const byImage = new Map<number, typeof ds.vqa>();
    for (const s of ds.vqa) {
      const q = imgOf.get(s.id)!;
      expect(s.image).toBe(`${q.img_id}.png`);
      expect(existsSync(join(dir, 'images', s.image))).toBe(true);
      expect(q.split).toBe(graphs[q.img_id].split);
      byImage.set(q.img_id, [...(byImage.get(q.img_id) ?? []), s]);
    }
    expect(new Set(ds.vqa.map((s) => s.type))).toEqual(new Set(Object.values(RSVQA_TYPE_NAMES)));
    for (const g of graphs) {
      // Recompute from the scene-graph line alone: its seed and class give the scene, describeScene its answers.
      const scene = generateScene({ seed: g.seed, sceneClass: g.scene_class, size: g.width });
      expect(scene.objects.map((o) => [o.class, o.box])).toEqual(g.objects.map((o) => [o.class, o.box]));
      const expected = describeScene(scene, g.seed).vqa.map((p) => [p.question, [p.answer], RSVQA_TYPE_NAMES[p.type]]);
      expect((byImage.get(g.id) ?? []).map((s) => [s.question, s.answers, s.type])).toEqual(expected);
      // Count and presence answers also agree with the object list of the line itself.
      for (const s of byImage.get(g.id) ?? []) {
        const count = /^how many (.+) are (?:there|in the image) \?$/.exec(s.question);
        if (count) expect(s.answers).toEqual([String(g.objects.filter((o) => o.class === PLURAL_TO_CLASS.get(count[1])).length)]);
        const any = /^are there any (.+) \?$/.exec(s.question);
        if (any) expect(g.objects.some((o) => o.class === PLURAL_TO_CLASS.get(any[1]))).toBe(s.answers[0] === 'yes');
      }
    }
  });

  it('writes per-split RSVQA sets that partition the questions', async () => {
    const sizes = await Promise.all(['train', 'val', 'test'].map(async (s) => (await loadDataset('rsvqa', join(dir, `synth_split_${s}`))).vqa.length));
    const all = await loadDataset('rsvqa', join(dir, 'synth'));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(all.vqa.length);
    expect(sizes.every((n) => n > 0)).toBe(true);
  });

  it('writes change pairs whose `before` or `after` is the dataset image', () => {
    const index = JSON.parse(readFileSync(join(dir, 'change_pairs', 'change_pairs.json'), 'utf8')) as {
      change_pairs: Array<{ id: number; image_id: number; before: string; after: string; kind: string; caption: string }>;
    };
    expect(index.change_pairs.map((p) => p.image_id)).toEqual([0, 20]);
    for (const p of index.change_pairs) {
      expect(p.caption.length).toBeGreaterThan(0);
      const image = readFileSync(join(dir, 'images', `${p.image_id}.png`));
      const before = readFileSync(join(dir, 'change_pairs', p.before));
      const after = readFileSync(join(dir, 'change_pairs', p.after));
      expect(image.equals(p.kind === 'removed' ? after : before)).toBe(true);
      if (p.kind === 'none') expect(before.equals(after)).toBe(true);
      else expect(before.equals(after)).toBe(false);
    }
  });

  it('is deterministic by seed: same seed → identical files, another seed → different files', async () => {
    const again = fresh('b');
    await writeSyntheticDataset({ outDir: again, count: COUNT, seed: 7, concurrency: 9 });
    const a = snapshot(dir);
    const b = snapshot(again);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [path, bytes] of a) expect(bytes.equals(b.get(path)!), path).toBe(true);
    const other = fresh('c');
    await writeSyntheticDataset({ outDir: other, count: COUNT, seed: 8 });
    const c = snapshot(other);
    expect(c.get('images/0.png')!.equals(a.get('images/0.png')!)).toBe(false);
    expect(c.get('dataset_synth.json')!.equals(a.get('dataset_synth.json')!)).toBe(false);
  });

  it('assigns exact split sizes and rejects impossible options', async () => {
    const splits = assignSplits(1000, 1, { train: 0.8, val: 0.1, test: 0.1 });
    expect(['train', 'val', 'test'].map((s) => splits.filter((x) => x === s).length)).toEqual([800, 100, 100]);
    expect(imageSeed(1, 0)).not.toBe(imageSeed(1, 1));
    expect(imageSeed(1, 0)).not.toBe(imageSeed(2, 0));
    const outDir = fresh('bad');
    await expect(writeSyntheticDataset({ outDir, count: 0, seed: 1 })).rejects.toThrow(/count/);
    await expect(writeSyntheticDataset({ outDir, count: 1, seed: -1 })).rejects.toThrow(/seed/);
    await expect(writeSyntheticDataset({ outDir, count: 1, seed: 1, splits: { train: 0.5, val: 0.1, test: 0.1 } })).rejects.toThrow(/add up/);
  });
});
