import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatasetFormatError } from '../errors';
import { RSICD_SAMPLE, RSICD_TEST, UCM_SAMPLE } from '../test-paths';
import { loadDataset, parseDatasetSpec } from './dataset-loader';
import { readKarpathy } from './karpathy.adapter';
import { readNwpu } from './nwpu.adapter';
import { readRsicap } from './rsicap.adapter';
import { readRsieval } from './rsieval.adapter';
import { readRsvqa } from './rsvqa.adapter';

const readJson = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as unknown;

describe('Karpathy adapter on the real samples', () => {
  it('reads the UCM sample with its land-use classes', async () => {
    const samples = readKarpathy(await readJson(UCM_SAMPLE), UCM_SAMPLE);
    expect(samples).toHaveLength(25);
    expect(samples[0]).toMatchObject({ id: '0', image: '81.tif', split: 'test', category: 'agricultural' });
    expect(samples[0].references).toHaveLength(5);
    expect(samples[0].references[0]).toBe('There is a piece of farmland');
    expect(new Set(samples.map((s) => s.category)).size).toBe(21);
  });

  it('reads the RSICD samples, class from the file name', async () => {
    const one = await loadDataset('karpathy', RSICD_SAMPLE);
    expect(one.captions).toEqual([expect.objectContaining({ image: 'stadium_1.jpg', category: 'stadium' })]);
    const test = readKarpathy(await readJson(RSICD_TEST), RSICD_TEST);
    expect(test).toHaveLength(1093);
    expect(test.every((s) => s.references.length === 5 && s.split === 'test')).toBe(true);
    expect(test[0].category).toBe('viaduct');
  });

  it('reports the first bad record with its position', () => {
    const bad = { images: [{ filename: 'a.tif', imgid: 0, sentences: [{ raw: 'ok' }] }, { filename: 'b.tif', imgid: 1, sentences: [{ raw: 'ok' }, { tokens: [] }] }] };
    expect(() => readKarpathy(bad, 'x.json')).toThrow(DatasetFormatError);
    expect(() => readKarpathy(bad, 'x.json')).toThrow('x.json: images[1].sentences[1].raw: expected a string, got undefined');
    expect(() => readKarpathy({ images: [{ filename: 'a', imgid: 0, sentences: [{ raw: 'x' }] }, { filename: 'b', imgid: 0, sentences: [{ raw: 'y' }] }] }, 'x.json')).toThrow(
      /images\[1\]\.imgid: duplicate imgid 0/,
    );
  });
});

describe('other adapters (fixtures in the documented formats)', () => {
  it('reads NWPU-Captions keyed by category', () => {
    const json = {
      airplane: [{ filename: 'airplane_001.jpg', imgid: 7, split: 'test', raw: 'a plane', raw_1: 'an airplane', raw_2: 'b', raw_3: 'c', raw_4: 'd' }],
      lake: [{ filename: 'lake_010.jpg', imgid: 8, split: 'train', raw: 'a lake', raw_1: 'water', raw_2: 'e', raw_3: 'f', raw_4: 'g' }],
    };
    const samples = readNwpu(json, 'nwpu.json');
    expect(samples).toHaveLength(2);
    expect(samples[0]).toEqual({ id: '7', image: 'airplane/airplane_001.jpg', references: ['a plane', 'an airplane', 'b', 'c', 'd'], split: 'test', category: 'airplane' });
    expect(() => readNwpu({ lake: [{ filename: 'x.jpg', raw: 3 }] }, 'nwpu.json')).toThrow('nwpu.json: lake[0].raw: expected a string, got number 3');
  });

  it('reads RSICap', () => {
    const json = { annotations: [{ image_id: 'P0001', filename: 'P0001.png', text_input: 'Describe the image', text_output: 'A long caption.' }] };
    expect(readRsicap(json, 'rsicap.json')).toEqual([{ id: 'P0001', image: 'P0001.png', references: ['A long caption.'] }]);
    expect(() => readRsicap({ annotations: [json.annotations[0], { image_id: 'P2', filename: 'P2.png' }] }, 'rsicap.json')).toThrow(
      'rsicap.json: annotations[1].text_output: expected a string, got undefined',
    );
  });

  it('reads RSIEval captions and QA pairs', () => {
    const json = {
      annotations: [{ filename: 'a.png', caption: 'An airport.', qa_pairs: [{ question: 'How many planes?', answer: '3', type: 'quantity' }, { question: 'Is it day?', answer: 'yes', type: 'presence' }] }],
    };
    const r = readRsieval(json, 'rsieval.json');
    expect(r.captions).toEqual([{ id: 'a.png', image: 'a.png', references: ['An airport.'] }]);
    expect(r.vqa.map((q) => [q.id, q.answers[0], q.type])).toEqual([['a.png#0', '3', 'quantity'], ['a.png#1', 'yes', 'presence']]);
    expect(() => readRsieval({ annotations: [{ filename: 'a.png', caption: 'x', qa_pairs: [{ question: 'q', answer: 'a' }] }] }, 'r.json')).toThrow(
      'r.json: annotations[0].qa_pairs[0].type: expected a string, got undefined',
    );
  });

  it('reads RSVQA split files, keeping only active rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rsvqa-'));
    const prefix = join(dir, 'LR_split_test');
    writeFileSync(`${prefix}_images.json`, JSON.stringify({ images: [{ id: 0, active: true, questions_ids: [0, 1, 2] }, { id: 1, active: false, questions_ids: [3] }] }));
    writeFileSync(
      `${prefix}_questions.json`,
      JSON.stringify({
        questions: [
          { id: 0, img_id: 0, type: 'presence', question: 'Is there a road?', answers_ids: [0], active: true },
          { id: 1, img_id: 0, type: 'count', question: 'How many buildings?', answers_ids: [1], active: true },
          { id: 2, img_id: 0, type: 'comp', question: 'Is it urban?', answers_ids: [2], active: false },
          { id: 3, img_id: 1, type: 'presence', question: 'Is there water?', answers_ids: [3], active: false },
        ],
      }),
    );
    writeFileSync(
      `${prefix}_answers.json`,
      JSON.stringify({
        answers: [
          { id: 0, question_id: 0, answer: 'yes', active: true },
          { id: 1, question_id: 1, answer: '12', active: true },
          { id: 2, question_id: 2, answer: 'no', active: false },
          { id: 3, question_id: 3, answer: 'no', active: false },
        ],
      }),
    );
    const { vqa } = await loadDataset('rsvqa', prefix);
    expect(vqa).toEqual([
      { id: '0', image: '0.tif', question: 'Is there a road?', answers: ['yes'], type: 'presence' },
      { id: '1', image: '0.tif', question: 'How many buildings?', answers: ['12'], type: 'count' },
    ]);
    writeFileSync(`${prefix}_images.json`, JSON.stringify({ images: [{ id: 0, active: true, original_name: '0.png' }] }));
    expect((await loadDataset('rsvqa', prefix)).vqa.map((s) => s.image)).toEqual(['0.png', '0.png']);
    const files = (q: unknown) => ({
      questions: { json: q, file: 'q.json' },
      answers: { json: { answers: [] }, file: 'a.json' },
      images: { json: { images: [{ id: 0, active: true }] }, file: 'i.json' },
    });
    expect(() => readRsvqa(files({ questions: [{ id: 5, img_id: 0, type: 'count', question: 'q', active: true }] }))).toThrow('q.json: questions[0]: no active answer for question 5');
    expect(() => readRsvqa(files({ questions: [{ id: 5, img_id: 0, type: 'count', question: 'q', active: 'yes' }] }))).toThrow('q.json: questions[0].active: expected true or false');
  });


  it('parses dataset specs and rejects unknown formats', () => {
    expect(parseDatasetSpec('karpathy:/a/b:c.json')).toEqual({ format: 'karpathy', path: '/a/b:c.json' });
    expect(() => parseDatasetSpec('coco:/x.json')).toThrow(/format one of karpathy, nwpu/);
  });

  it('reports unreadable and malformed files', async () => {
    await expect(loadDataset('karpathy', '/nonexistent/x.json')).rejects.toThrow('/nonexistent/x.json: (file): cannot read: ENOENT');
    const dir = mkdtempSync(join(tmpdir(), 'bad-'));
    writeFileSync(join(dir, 'x.json'), '{"images": [');
    await expect(loadDataset('karpathy', join(dir, 'x.json'))).rejects.toThrow(/\(file\): not valid JSON/);
  });
});
