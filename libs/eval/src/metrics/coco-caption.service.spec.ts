import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ScoringInputError } from '../errors';
import { readKarpathy } from '../adapters/karpathy.adapter';
import { RSICD_TEST, UCM_SAMPLE } from '../test-paths';
import { evaluateCaptions } from './coco-caption.service';

/** Leave-one-out: the first caption of each image is the candidate, the other four the references. */
function leaveOneOut(file: string, field: 'raw' | 'tokens') {
  const json = JSON.parse(readFileSync(file, 'utf8')) as { images: Array<{ imgid: number; sentences: Array<{ raw: string; tokens: string[] }> }> };
  const refs: Record<string, string[]> = {};
  const preds: Record<string, string> = {};
  for (const image of json.images) {
    const captions = image.sentences.map((s) => (field === 'raw' ? s.raw : s.tokens.join(' ')));
    preds[String(image.imgid)] = captions[0];
    refs[String(image.imgid)] = captions.slice(1);
  }
  return { refs, preds };
}

describe('evaluateCaptions', () => {
  it('names ids that are missing on either side', () => {
    expect(() => evaluateCaptions({ a: ['x'], b: ['y'] }, { a: 'x', c: 'z' })).toThrow(ScoringInputError);
    expect(() => evaluateCaptions({ a: ['x'], b: ['y'] }, { a: 'x', c: 'z' })).toThrow(/without references: "c".*without a candidate: "b"/);
  });

  it('accepts {id: [caption]} candidates and rejects malformed values', () => {
    expect(evaluateCaptions({ a: ['x y'], b: ['z'] }, { a: ['x y'], b: ['z'] }).scores.Bleu_1).toBeCloseTo(1, 6);
    expect(() => evaluateCaptions({ a: ['x'] }, { a: ['x', 'y'] })).toThrow(/array of one string/);
    expect(() => evaluateCaptions({ a: [] }, { a: 'x' })).toThrow(/non-empty array/);
  });

  it('tokenizes both sides the same way: case and punctuation variants score as equal', () => {
    const refs = { 1: ['A plane, parked near the terminal.'], 2: ['Two white storage tanks'] };
    const exact = evaluateCaptions(refs, { 1: 'a plane parked near the terminal', 2: 'two white storage tanks' });
    const noisy = evaluateCaptions(refs, { 1: 'A PLANE parked; near the terminal!', 2: 'Two white storage-tanks ...' });
    expect(exact.scores.Bleu_4).toBeCloseTo(1, 6);
    expect(exact.scores.ROUGE_L).toBeCloseTo(1, 6);
    expect(noisy.scores.Bleu_1).toBeLessThan(1); // "storage-tanks" stays one token
    const noisy1 = evaluateCaptions({ 1: refs[1], 2: ['x'] }, { 1: 'A PLANE parked; near the terminal!', 2: 'x' });
    expect(noisy1.perImage).toBeUndefined();
    expect(noisy1.scores.Bleu_4).toBeCloseTo(1, 6);
  });

  it('keeps an empty candidate in the corpus with zero scores', () => {
    const r = evaluateCaptions({ 1: ['a b c d'], 2: ['e f g h'] }, { 1: 'a b c d', 2: '' }, { perImage: true });
    const empty = r.perImage?.[1];
    expect(empty?.Bleu_1).toBeLessThan(1e-6);
    expect(empty?.METEOR).toBe(0);
    expect(empty?.ROUGE_L).toBe(0);
    expect(empty?.CIDEr).toBe(0);
    expect(r.scores.Bleu_1).toBeCloseTo(Math.exp(-1), 6); // 4 candidate words vs 8 reference words
  });

  it('scores a candidate with repeated words below one with the same words once', () => {
    const refs = { 1: ['a red roof'], 2: ['a river'] };
    const once = evaluateCaptions(refs, { 1: 'a red roof', 2: 'a river' });
    const repeated = evaluateCaptions(refs, { 1: 'a red red red roof', 2: 'a river' });
    expect(repeated.scores.Bleu_1).toBeLessThan(once.scores.Bleu_1);
    expect(repeated.scores.CIDEr).toBeLessThan(once.scores.CIDEr);
  });

  // Reference values: pycocoevalcap's BleuScorer, Rouge and CiderScorer run on the same tokenized strings.
  it('reproduces the toolkit on the UCM sample, leave-one-out, pre-tokenized', () => {
    const { refs, preds } = leaveOneOut(UCM_SAMPLE, 'tokens');
    const s = evaluateCaptions(refs, preds, { tokenized: true, skipMeteor: true }).scores;
    expect(s.Bleu_1).toBeCloseTo(0.7964678815363287, 9);
    expect(s.Bleu_2).toBeCloseTo(0.7568285087255409, 9);
    expect(s.Bleu_3).toBeCloseTo(0.7230725065853395, 9);
    expect(s.Bleu_4).toBeCloseTo(0.6883311420333786, 9);
    expect(s.ROUGE_L).toBeCloseTo(0.7151683968612518, 9);
    expect(s.CIDEr).toBeCloseTo(3.3797971259246755, 9);
  });

  it('reproduces the toolkit on the 1,093 RSICD test images, leave-one-out, pre-tokenized', () => {
    const { refs, preds } = leaveOneOut(RSICD_TEST, 'tokens');
    expect(Object.keys(preds)).toHaveLength(1093);
    const s = evaluateCaptions(refs, preds, { tokenized: true, skipMeteor: true }).scores;
    expect(s.Bleu_1).toBeCloseTo(0.40934853637391416, 9);
    expect(s.Bleu_2).toBeCloseTo(0.27205667008003387, 9);
    expect(s.Bleu_3).toBeCloseTo(0.207572059221807, 9);
    expect(s.Bleu_4).toBeCloseTo(0.17200651083188523, 9);
    expect(s.ROUGE_L).toBeCloseTo(0.3717957570107973, 9);
    expect(s.CIDEr).toBeCloseTo(0.8867990140062753, 9);
  });

  // Regression values of the full pipeline (our PTB tokenizer + all metrics) on raw captions.
  it('scores the UCM sample leave-one-out from raw captions', () => {
    const { refs, preds } = leaveOneOut(UCM_SAMPLE, 'raw');
    expect(readKarpathy(JSON.parse(readFileSync(UCM_SAMPLE, 'utf8')), UCM_SAMPLE)).toHaveLength(25);
    const s = evaluateCaptions(refs, preds).scores;
    expect(s).toEqual({
      Bleu_1: expect.closeTo(0.7964678815363287, 9),
      Bleu_2: expect.closeTo(0.7568285087255409, 9),
      Bleu_3: expect.closeTo(0.7230725065853395, 9),
      Bleu_4: expect.closeTo(0.6883311420333786, 9),
      METEOR: expect.closeTo(0.4137324674100807, 9),
      ROUGE_L: expect.closeTo(0.7151683968612518, 9),
      CIDEr: expect.closeTo(3.3797971259246755, 9),
    });
  });

  it('scores the RSICD test captions leave-one-out from raw captions', () => {
    const { refs, preds } = leaveOneOut(RSICD_TEST, 'raw');
    const s = evaluateCaptions(refs, preds).scores;
    expect(s).toEqual({
      Bleu_1: expect.closeTo(0.41094326955351385, 9),
      Bleu_2: expect.closeTo(0.2728831818190129, 9),
      Bleu_3: expect.closeTo(0.2083674222222831, 9),
      Bleu_4: expect.closeTo(0.17280258644770996, 9),
      METEOR: expect.closeTo(0.20020913789159278, 9),
      ROUGE_L: expect.closeTo(0.37237311766572273, 9),
      CIDEr: expect.closeTo(0.8862518857951173, 9),
    });
  });
});
