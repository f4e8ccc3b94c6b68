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
        { expertId: 'theme', prompt: 'describe the scene theme of the image .', reason: 'caption: theme has a caption prompt (fusion position 1 of 3)' },
        {
          expertId: 'object',
          prompt: 'describe the objects in the image and how many there are .',
          reason: 'caption: object has a caption prompt (fusion position 2 of 3)',
        },
        {
          expertId: 'relation',
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
