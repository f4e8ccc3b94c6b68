import { resolve } from 'node:path';
import { loadPackManifest, parsePackManifest, type PackManifest } from '@rsmoe/contracts';
import { describe, expect, it, vi } from 'vitest';
import { InvalidRoutingRequestError, NoExpertForTaskError } from './errors';
import { InstructionRouter } from './instruction-router';
import type { RouterModel } from './router-model';

const TINY_PACK = loadPackManifest(resolve(__dirname, '../../../models/fixtures/tiny-pack'));
const MODEL_DIR = resolve(__dirname, '../../../models/fixtures');

function pack(overrides: Record<string, unknown>): PackManifest {
  const expert = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    model: 'tiny-llava',
    prompts: { caption: `${id} describe the {scene} image .`, vqa: `${id} : {question}` },
    ...extra,
  });
  return parsePackManifest(
    {
      name: 'p',
      version: '1',
      experts: [expert('a', { questionTypes: ['count'] }), expert('b', { questionTypes: ['count', 'presence'] }), expert('c')],
      ...overrides,
    },
    MODEL_DIR,
  );
}

describe('InstructionRouter on the tiny pack', () => {
  const router = new InstructionRouter(TINY_PACK);

  it('sends a caption to every expert in theme → object → relation order, each with its own prompt', () => {
    const decision = router.route({ task: 'caption' });
    expect(decision).toEqual({
      task: 'caption',
      fallback: false,
      experts: [
        { expertId: 'theme', task: 'caption', prompt: 'describe the scene theme of the image .', reason: 'caption: theme has a caption prompt (fusion position 1 of 3)' },
        {
          expertId: 'object',
          task: 'caption',
          prompt: 'describe the objects in the image and how many there are .',
          reason: 'caption: object has a caption prompt (fusion position 2 of 3)',
        },
        {
          expertId: 'relation',
          task: 'caption',
          prompt: 'describe the spatial relations between the objects .',
          reason: 'caption: relation has a caption prompt (fusion position 3 of 3)',
        },
      ],
    });
  });

  it.each([
    ['Is there a road?', 'presence', ['object']],
    ['How many cars are there?', 'count', ['object']],
    ['Are there more houses than trees?', 'comparison', ['relation']],
    ['Is it a rural or an urban area?', 'rural_urban', ['theme']],
    ['What is the area covered by buildings?', 'area', ['theme']],
  ])('routes %j (%s) only to %j', (question, type, experts) => {
    const decision = router.route({ task: 'vqa', question });
    expect(decision.questionType).toBe(type);
    expect(decision.questionTypeSource).toBe('rule');
    expect(decision.fallback).toBe(false);
    expect(decision.experts.map((e) => e.expertId)).toEqual(experts);
    expect(decision.experts[0].reason).toMatch(new RegExp(`^question type ${type} \\(rule ".+"\\) ∈ ${experts[0]}\\.questionTypes$`));
  });

  it('writes the question into the expert prompt, tidied', () => {
    const decision = router.route({ task: 'vqa', question: '  how many   cars are there ? ' });
    expect(decision.question).toBe('how many cars are there ?');
    expect(decision.experts).toEqual([
      {
        expertId: 'object',
        task: 'vqa',
        prompt: 'the objects in the image . answer the question : how many cars are there ?',
        reason: 'question type count (rule "how many") ∈ object.questionTypes',
      },
    ]);
  });

  it('falls back to every vqa expert for a question of type other, and says why', () => {
    const decision = router.route({ task: 'vqa', question: 'What colour is the roof?' });
    expect(decision.questionType).toBe('other');
    expect(decision.questionTypeSource).toBe('no-rule');
    expect(decision.fallback).toBe(true);
    expect(decision.experts.map((e) => e.expertId)).toEqual(['theme', 'object', 'relation']);
    expect(decision.experts[0].reason).toBe("question type other (no rule matched) is in no expert's questionTypes: dense fallback to every vqa expert");
  });

  it('refuses an empty or missing question', () => {
    expect(() => router.route({ task: 'vqa', question: '   ' })).toThrow(InvalidRoutingRequestError);
    expect(() => router.route({ task: 'vqa' })).toThrow(/non-empty question/);
  });

  it('ignores a question sent with a caption', () => {
    expect(router.route({ task: 'caption', question: 'how many ?' }).experts).toHaveLength(3);
  });

  it('uses a question type given in the request', () => {
    const decision = router.route({ task: 'vqa', question: 'what is it ?', questionType: 'comparison' });
    expect(decision.questionTypeSource).toBe('request');
    expect(decision.experts.map((e) => [e.expertId, e.reason])).toEqual([['relation', 'question type comparison (given) ∈ relation.questionTypes']]);
  });
});

describe('InstructionRouter on other packs', () => {
  it('routes to every expert that lists the type, in fusion order', () => {
    const router = new InstructionRouter(pack({ fusion: { order: ['c', 'b', 'a'] } }));
    expect(router.route({ task: 'vqa', question: 'how many cars ?' }).experts.map((e) => e.expertId)).toEqual(['b', 'a']);
    expect(router.route({ task: 'caption' }).experts.map((e) => e.expertId)).toEqual(['c', 'b', 'a']);
  });

  it('falls back when a known type is listed by no expert', () => {
    const decision = new InstructionRouter(pack({})).route({ task: 'vqa', question: 'Is it rural or urban?' });
    expect(decision).toMatchObject({ questionType: 'rural_urban', fallback: true });
    expect(decision.experts.map((e) => e.expertId)).toEqual(['a', 'b', 'c']);
  });

  it('fills {scene} from the scene hint, or leaves it out', () => {
    const router = new InstructionRouter(pack({}));
    expect(router.route({ task: 'caption', sceneHint: ' dense  residential ' }).experts[0].prompt).toBe('a describe the dense residential image .');
    expect(router.route({ task: 'caption' }).experts[0].prompt).toBe('a describe the image .');
  });

  it('applies the pack question rules before the built-in ones', () => {
    const router = new InstructionRouter(pack({ router: { questionTypeRules: [{ type: 'presence', pattern: '^how many' }] } }));
    const decision = router.route({ task: 'vqa', question: 'How many cars?' });
    expect(decision.questionType).toBe('presence');
    expect(decision.experts.map((e) => e.expertId)).toEqual(['b']);
  });

  it('routes only experts with a prompt for the task, and fails when none has one', () => {
    const captionOnly = pack({
      experts: [
        { id: 'a', model: 'tiny-llava', prompts: { caption: 'describe .' } },
        { id: 'b', model: 'tiny-llava', prompts: { vqa: 'b : {question}' } },
      ],
    });
    const router = new InstructionRouter(captionOnly);
    expect(router.route({ task: 'caption' }).experts.map((e) => e.expertId)).toEqual(['a']);
    expect(router.route({ task: 'vqa', question: 'why ?' }).experts.map((e) => e.expertId)).toEqual(['b']);
    const noVqa = new InstructionRouter(pack({ experts: [{ id: 'a', model: 'tiny-llava', prompts: { caption: 'describe .' } }] }));
    expect(() => noVqa.route({ task: 'vqa', question: 'why ?' })).toThrow(NoExpertForTaskError);
  });
});

describe('InstructionRouter with a router model', () => {
  it('takes the scene class and question type from the model', async () => {
    const model: RouterModel = { predict: vi.fn(async () => ({ sceneClass: 'harbor', questionType: 'presence' as const })) };
    const router = new InstructionRouter(pack({}), { model });
    const image = new Uint8Array([137, 80, 78, 71]);
    const decision = await router.routeWithModel({ task: 'vqa', question: 'what is it ?' }, image);
    expect(model.predict).toHaveBeenCalledWith({ task: 'vqa', question: 'what is it ?', image });
    expect(decision).toMatchObject({ questionType: 'presence', questionTypeSource: 'model', fallback: false });
    expect(decision.experts.map((e) => e.expertId)).toEqual(['b']);
    expect(decision.experts[0].reason).toBe('question type presence (router model) ∈ b.questionTypes');
    const caption = await router.routeWithModel({ task: 'caption' });
    expect(caption.experts[0].prompt).toBe('a describe the harbor image .');
  });

  it('lets the request override the model, and falls back to rules when the model has no opinion', async () => {
    const router = new InstructionRouter(pack({}), { model: { predict: async () => ({}) } });
    expect((await router.routeWithModel({ task: 'vqa', question: 'how many ?' })).questionTypeSource).toBe('rule');
    expect((await router.routeWithModel({ task: 'caption', sceneHint: 'farm' })).experts[0].prompt).toBe('a describe the farm image .');
  });

  it('checks the question before calling the model', async () => {
    const predict = vi.fn(async () => ({}));
    const router = new InstructionRouter(pack({}), { model: { predict } });
    await expect(router.routeWithModel({ task: 'vqa', question: '' })).rejects.toThrow(InvalidRoutingRequestError);
    expect(predict).not.toHaveBeenCalled();
  });

  it('routes with rules when there is no model', async () => {
    const decision = await new InstructionRouter(TINY_PACK).routeWithModel({ task: 'vqa', question: 'is there a road ?' });
    expect(decision.experts.map((e) => e.expertId)).toEqual(['object']);
  });
});

describe("RSUniVLM's tasks: routed by task tag to the granularity expert", () => {
  const granular = (extra: Record<string, unknown> = {}) =>
    parsePackManifest(
      {
        name: 'uni',
        version: '1',
        labels: { classification: ['Airport', 'farmland'], segmentation: ['others', 'building', 'water'] },
        experts: [
          { id: 'theme', model: 'tiny-llava', prompts: { caption: 'describe the theme .' } },
          {
            id: 'image',
            model: 'tiny-llava',
            granularity: 'image',
            prompts: { caption: '[CAP] describe .', classification: '[CLS] what scene ?', change_caption: '[CCD] what changed ?' },
          },
          { id: 'region', model: 'tiny-llava', granularity: 'region', prompts: { grounding: '[VG] {query}', referring: '[REF] {box}' } },
          { id: 'pixel', model: 'tiny-llava', granularity: 'pixel', prompts: { segmentation: '[SEG] {query}', change_mask: '[SEG] changes' } },
        ],
        ...extra,
      },
      MODEL_DIR,
    );
  const router = new InstructionRouter(granular());

  it('[CLS] goes to the image-level expert, with the pack labels to read the answer against', () => {
    const decision = router.route({ task: 'classification' });
    expect(decision.experts).toEqual([{ expertId: 'image', task: 'classification', prompt: '[CLS] what scene ?', reason: 'classification: [CLS] → the image-level expert (image)' }]);
    expect(decision.inputs).toEqual({ labels: ['Airport', 'farmland'] });
  });

  it('[VG] and [REF] go to the region expert, the phrase and the box (as RSUniVLM writes boxes) in the prompt', () => {
    expect(router.route({ task: 'grounding', query: '  the  runway ' })).toMatchObject({
      experts: [{ expertId: 'region', task: 'grounding', prompt: '[VG] the runway' }],
      inputs: { query: 'the runway' },
    });
    const box = { x1: 10.4, y1: 20, x2: 55.6, y2: 80 };
    expect(router.route({ task: 'referring', box })).toMatchObject({ experts: [{ expertId: 'region', task: 'referring', prompt: '[REF] [10, 20, 56, 80]' }], inputs: { box } });
  });

  it('[SEG] goes to the pixel expert: the classes asked for (others first), else the query, else the pack labels', () => {
    expect(router.route({ task: 'segmentation', classes: ['water', 'building', 'water'] })).toMatchObject({
      experts: [{ expertId: 'pixel', task: 'segmentation', prompt: '[SEG] water, building' }],
      inputs: { classes: ['others', 'water', 'building'] },
    });
    expect(router.route({ task: 'segmentation', query: 'water' }).inputs).toEqual({ query: 'water', classes: ['others', 'water'] });
    expect(router.route({ task: 'segmentation' }).inputs).toEqual({ classes: ['others', 'building', 'water'] });
  });

  it('a change runs the image expert ([CCD]) and the pixel expert ([SEG]) in parallel, or the one its output asks for', () => {
    expect(router.route({ task: 'change' }).experts.map((e) => [e.expertId, e.task])).toEqual([
      ['image', 'change_caption'],
      ['pixel', 'change_mask'],
    ]);
    expect(router.route({ task: 'change', changeOutput: 'caption' }).experts.map((e) => e.expertId)).toEqual(['image']);
    expect(router.route({ task: 'change', changeOutput: 'mask' })).toMatchObject({ experts: [{ expertId: 'pixel' }], inputs: { classes: ['others', 'changed'] } });
  });

  it('captions stay RS-MoE routing: every expert with a caption prompt', () => {
    expect(router.route({ task: 'caption' }).experts.map((e) => e.expertId)).toEqual(['theme', 'image']);
  });

  it('prefers the expert of the granularity; without one, an expert with the prompt', () => {
    const loose = new InstructionRouter(
      granular({
        experts: [
          { id: 'generic', model: 'tiny-llava', prompts: { grounding: 'find {query}' } },
          { id: 'region', model: 'tiny-llava', granularity: 'region', prompts: { grounding: '[VG] {query}' } },
        ],
      }),
    );
    expect(loose.route({ task: 'grounding', query: 'x' }).experts[0].expertId).toBe('region');
    const only = new InstructionRouter(granular({ experts: [{ id: 'generic', model: 'tiny-llava', prompts: { grounding: 'find {query}' } }] }));
    expect(only.route({ task: 'grounding', query: 'x' }).experts[0]).toMatchObject({ expertId: 'generic', reason: expect.stringContaining('no region-level expert') });
  });

  it('refuses missing inputs, and names the tasks the pack serves for one it does not', () => {
    expect(() => router.route({ task: 'grounding' })).toThrow(InvalidRoutingRequestError);
    expect(() => router.route({ task: 'referring' })).toThrow(/needs a box/);
    expect(() => new InstructionRouter(TINY_PACK).route({ task: 'grounding', query: 'x' })).toThrow(
      /task grounding is not supported by this pack \(no expert of the pack has a grounding prompt\); it serves: caption, vqa/,
    );
    expect(router.servedTasks).toEqual(['caption', 'classification', 'grounding', 'referring', 'segmentation', 'change']);
  });
});
