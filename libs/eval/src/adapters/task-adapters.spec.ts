import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatasetFormatError } from '../errors';
import { EVAL_FIXTURES } from '../test-paths';
import { readClassFolders } from './class-folder.adapter';
import { parseDiorRsvgSplit, readDiorRsvg, readDiorRsvgAnnotation } from './dior-rsvg.adapter';
import { readLevirCc } from './levir-cc.adapter';
import { readLevirCd } from './levir-cd.adapter';
import { readRsunivlmEvalList } from './rsunivlm-eval.adapter';
import { loadClassFolders, loadDiorRsvg, loadLevirCc, loadLevirCd, loadRsunivlmEvalList } from './task-dataset-loader';

const DIOR = join(EVAL_FIXTURES, 'dior-rsvg');

/** Makes `<root>/<path>` files (empty: the folder adapters only list names). */
function tree(paths: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'rsmoe-tree-'));
  for (const path of paths) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), '');
  }
  return root;
}

describe('DIOR-RSVG adapter', () => {
  it('reads every object of the annotation folder, numbered over the files', async () => {
    const samples = await loadDiorRsvg(DIOR);
    expect(samples).toEqual([
      { id: '00001#0', index: 0, image: '00001.jpg', expression: 'The vehicle on the upper right', box: [510, 24, 544, 62], category: 'vehicle', width: 800, height: 800 },
      {
        id: '00001#1',
        index: 1,
        image: '00001.jpg',
        expression: 'A gray storage tank left of the road & the car park',
        box: [103, 400, 187, 481],
        category: 'storagetank',
        width: 800,
        height: 800,
      },
      { id: '00002#0', index: 2, image: '00002.jpg', expression: 'The dam across the river', box: [0, 312, 799, 455], category: 'dam', width: 800, height: 800 },
    ]);
  });

  it('keeps the objects a split file lists', async () => {
    expect((await loadDiorRsvg(DIOR, 'test')).map((s) => s.id)).toEqual(['00001#0', '00002#0']);
    expect((await loadDiorRsvg(DIOR, 'val')).map((s) => s.id)).toEqual(['00001#1']);
    await expect(loadDiorRsvg(DIOR, 'train')).rejects.toThrow(/train\.txt: \(file\): cannot read: ENOENT/);
    const xml = await readFile(join(DIOR, 'Annotations/00002.xml'), 'utf8');
    expect(() => readDiorRsvg([{ file: '00002.xml', xml }], { indices: new Set([0, 5]), file: 'test.txt' })).toThrow(
      'test.txt: (file): index 5 is beyond the 1 objects of the annotations',
    );
    expect(() => parseDiorRsvgSplit('0\n12\nx3\n', 'test.txt')).toThrow('test.txt: line 3: expected an object index, got "x3"');
  });

  it('orders annotation files by number, not by text', () => {
    const one = (name: string) => `<annotation><filename>${name}.jpg</filename><object><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>1</xmax><ymax>1</ymax></bndbox><description>${name}</description></object></annotation>`;
    const samples = readDiorRsvg([{ file: 'a/10.xml', xml: one('10') }, { file: 'a/9.xml', xml: one('9') }]);
    expect(samples.map((s) => [s.id, s.index])).toEqual([['9#0', 0], ['10#0', 1]]);
    expect(samples[0]).not.toHaveProperty('category');
  });

  it('names the file and the element at fault', () => {
    const object = (bndbox: string, description = '<description>x</description>') =>
      `<annotation><filename>1.jpg</filename><object><name>ship</name><bndbox>${bndbox}</bndbox>${description}</object></annotation>`;
    const box = '<xmin>5</xmin><ymin>0</ymin><xmax>9</xmax><ymax>4</ymax>';
    expect(readDiorRsvgAnnotation(object(box), 'x.xml')[0].box).toEqual([5, 0, 9, 4]);
    expect(() => readDiorRsvgAnnotation(object(box.replace('<xmax>9</xmax>', '<xmax>4</xmax>')), 'x.xml')).toThrow(DatasetFormatError);
    expect(() => readDiorRsvgAnnotation(object(box.replace('<xmax>9</xmax>', '<xmax>4</xmax>')), 'x.xml')).toThrow(
      'x.xml: annotation.object[0].bndbox: malformed box [5, 0, 4, 4] (needs xmax ≥ xmin and ymax ≥ ymin)',
    );
    expect(() => readDiorRsvgAnnotation(object(box.replace('<ymax>4</ymax>', '<ymax>four</ymax>')), 'x.xml')).toThrow(
      'x.xml: annotation.object[0].bndbox.ymax: expected a number, got "four"',
    );
    expect(() => readDiorRsvgAnnotation(object(box.replace('<ymin>0</ymin>', '')), 'x.xml')).toThrow('x.xml: annotation.object[0].bndbox.ymin: expected a string, got undefined');
    expect(() => readDiorRsvgAnnotation(object(box, ''), 'x.xml')).toThrow('x.xml: annotation.object[0].description: expected a string, got undefined');
    expect(() => readDiorRsvgAnnotation(object(box, '<description> </description>'), 'x.xml')).toThrow('annotation.object[0].description: expected a non-empty string');
    expect(() => readDiorRsvgAnnotation('<annotation><object></annotation>', 'x.xml')).toThrow(/^x\.xml: line 1: not well-formed XML: /);
    expect(() => readDiorRsvgAnnotation('<image/>', 'x.xml')).toThrow('x.xml: annotation: expected an object, got undefined');
  });
});

describe('LEVIR-CC adapter', () => {
  it('reads the caption file with the A/B image paths', async () => {
    const samples = await loadLevirCc(join(EVAL_FIXTURES, 'levir-cc/LevirCCcaptions.json'));
    expect(samples).toEqual([
      {
        id: 'test_000001.png',
        before: 'test/A/test_000001.png',
        after: 'test/B/test_000001.png',
        references: [' a road is built along the houses .', ' some houses appear at the top .'],
        split: 'test',
        changed: true,
      },
      { id: 'train_000007.png', before: 'train/A/train_000007.png', after: 'train/B/train_000007.png', references: [' the scene is the same as before .'], split: 'train', changed: false },
    ]);
  });

  it('names the first bad record', () => {
    const image = { filepath: 'test', filename: 'test_1.png', sentences: [{ raw: 'x' }] };
    expect(readLevirCc({ images: [image] }, 'c.json')).toEqual([{ id: 'test_1.png', before: 'test/A/test_1.png', after: 'test/B/test_1.png', references: ['x'] }]);
    expect(() => readLevirCc({ images: [image, { ...image, filename: 'test_2.png', sentences: [] }] }, 'c.json')).toThrow('c.json: images[1].sentences: expected at least one sentence');
    expect(() => readLevirCc({ images: [image, image] }, 'c.json')).toThrow('c.json: images[1].filename: duplicate filename test_1.png');
    expect(() => readLevirCc({ images: [{ ...image, filepath: undefined }] }, 'c.json')).toThrow('c.json: images[0].filepath: expected a string');
    expect(() => readLevirCc({ images: [{ ...image, changeflag: 'yes' }] }, 'c.json')).toThrow('c.json: images[0].changeflag: expected 0 or 1, got "yes"');
    expect(() => readLevirCc([], 'c.json')).toThrow(DatasetFormatError);
  });
});

describe('LEVIR-CD adapter', () => {
  it('pairs A/, B/ and label/ by file name', async () => {
    const root = tree(['A/test_2.png', 'A/test_1.png', 'B/test_1.png', 'B/test_2.png', 'label/test_1.png', 'label/test_2.png', 'label/.DS_Store', 'A/readme.txt']);
    expect(await loadLevirCd(root)).toEqual([
      { id: 'test_1.png', before: 'A/test_1.png', after: 'B/test_1.png', label: 'label/test_1.png' },
      { id: 'test_2.png', before: 'A/test_2.png', after: 'B/test_2.png', label: 'label/test_2.png' },
    ]);
  });

  it('names the first file missing from a sub-folder', async () => {
    expect(() => readLevirCd({ A: ['x.png', 'y.png'], B: ['x.png', 'y.png'], label: ['x.png'] }, '/d/test')).toThrow(DatasetFormatError);
    expect(() => readLevirCd({ A: ['x.png', 'y.png'], B: ['x.png', 'y.png'], label: ['x.png'] }, '/d/test')).toThrow('/d/test: label/y.png: missing (present in A/ and B/)');
    expect(() => readLevirCd({ A: [], B: [], label: [] }, '/d/test')).toThrow('/d/test: A/: no images');
    await expect(loadLevirCd(tree(['A/x.png', 'B/x.png']))).rejects.toThrow(/label: \(folder\): cannot read: ENOENT/);
  });
});

describe('class-per-folder adapter (UCM, AID)', () => {
  it('reads <root>/<class>/<image> with sorted classes', async () => {
    const root = tree(['storagetanks/s01.tif', 'agricultural/a10.tif', 'agricultural/a02.tif', 'agricultural/Thumbs.db', 'README.md', '.git/HEAD']);
    expect(await loadClassFolders(root)).toEqual({
      classes: ['agricultural', 'storagetanks'],
      samples: [
        { id: 'agricultural/a02.tif', image: 'agricultural/a02.tif', label: 'agricultural' },
        { id: 'agricultural/a10.tif', image: 'agricultural/a10.tif', label: 'agricultural' },
        { id: 'storagetanks/s01.tif', image: 'storagetanks/s01.tif', label: 'storagetanks' },
      ],
    });
  });

  it('sorts classes by code unit like ImageFolder and rejects empty classes', () => {
    expect(readClassFolders({ beach: ['1.jpg'], Airport: ['1.jpg'], airport: ['1.jpg'] }, 'r').classes).toEqual(['Airport', 'airport', 'beach']);
    expect(() => readClassFolders({ beach: ['1.jpg'], forest: ['notes.txt'] }, '/data/aid')).toThrow('/data/aid: forest/: class folder without images');
    expect(() => readClassFolders({}, '/data/aid')).toThrow('/data/aid: (folder): no class folders');
  });
});

describe("RSUniVLM's evaluation list", () => {
  it('keeps the task tag, prompt, reference answer, images and metadata', async () => {
    const samples = await loadRsunivlmEvalList(join(EVAL_FIXTURES, 'rsunivlm/eval-list.json'));
    expect(samples.map((s) => [s.id, s.task, s.images.length])).toEqual([
      ['dior_rsvg_00001_0', 'VG', 1],
      ['17', 'CCD', 2],
      ['ucm_agricultural00', 'CLS', 1],
      ['levir_cd_test_1', 'SEG', 2],
    ]);
    expect(samples[0]).toEqual({
      id: 'dior_rsvg_00001_0',
      task: 'VG',
      prompt: '[VG] Where is the vehicle on the upper right?',
      answer: '[63.75, 3.0, 68.0, 7.75]',
      images: ['DIOR-RSVG/JPEGImages/00001.jpg'],
      metadata: { dataset: 'DIOR-RSVG', width: 800, height: 800 },
    });
    expect(samples[1].prompt).toBe('[CCD] Please briefly describe the changes in these two images.');
    expect(samples[1].metadata).toEqual({});
    expect(samples[2].images).toEqual(['UCM/agricultural/agricultural00.tif']);
    expect(samples[3].answer).toBe('others*3, building*2\nothers*5');
  });

  it('names the record and field at fault', () => {
    const ok = { sample_id: 'a', image: ['x.png'], conversations: [{ from: 'human', value: '<image>\n[VQA] Is there a road?' }, { from: 'gpt', value: 'yes' }] };
    expect(readRsunivlmEvalList([ok], 'l.json')[0]).toMatchObject({ task: 'VQA', prompt: '[VQA] Is there a road?', answer: 'yes' });
    const human = (value: string) => ({ ...ok, sample_id: 'b', conversations: [{ from: 'human', value }, ok.conversations[1]] });
    expect(() => readRsunivlmEvalList([ok, human('<image>\nIs there a road?')], 'l.json')).toThrow(DatasetFormatError);
    expect(() => readRsunivlmEvalList([ok, human('<image>\nIs there a road?')], 'l.json')).toThrow(
      'l.json: [1].conversations[0].value: expected a task tag ([CAP] [VQA] [CLS] [CCD] [VG] [REF] [SEG]) at the start, got "Is there a road?"',
    );
    expect(() => readRsunivlmEvalList([human('<image>\n[DET] find ships')], 'l.json')).toThrow('[0].conversations[0].value: expected a task tag');
    expect(() => readRsunivlmEvalList([human('<image> <image>\n[CAP] Describe.')], 'l.json')).toThrow('l.json: [0].conversations[0].value: 2 <image> placeholder(s) for 1 image(s)');
    expect(() => readRsunivlmEvalList([ok, ok], 'l.json')).toThrow('l.json: [1].sample_id: duplicate sample_id a');
    expect(() => readRsunivlmEvalList([{ ...ok, image: [] }], 'l.json')).toThrow('l.json: [0].image: expected at least one image');
    expect(() => readRsunivlmEvalList([{ ...ok, conversations: [ok.conversations[0]] }], 'l.json')).toThrow(
      'l.json: [0].conversations: expected one human turn and one gpt answer, got 1 turns',
    );
    expect(() => readRsunivlmEvalList([{ ...ok, conversations: [ok.conversations[1], ok.conversations[0]] }], 'l.json')).toThrow(
      'l.json: [0].conversations[0].from: expected "human", got "gpt"',
    );
    expect(() => readRsunivlmEvalList([{ ...ok, metadata: [] }], 'l.json')).toThrow('l.json: [0].metadata: expected an object, got an array');
    expect(() => readRsunivlmEvalList({ samples: [] }, 'l.json')).toThrow('l.json: (root): expected an array');
  });
});
