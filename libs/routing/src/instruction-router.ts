import { expertsInOrder, type ExpertAssignment, type PackExpert, type PackManifest, type QuestionType, type Task } from '@rsmoe/contracts';
import { InvalidRoutingRequestError, NoExpertForTaskError } from './errors';
import { renderPrompt } from './prompt-template';
import { BUILT_IN_QUESTION_RULES, classifyQuestion, compilePackRules, type QuestionRule } from './question-classifier';
import type { RouterModel } from './router-model';

/** What to route. */
export interface RoutingRequest {
  task: Task;
  /** The question (task `vqa`; required there, ignored for captions). */
  question?: string;
  /** Scene hint that fills `{scene}` in templates (e.g. from a router model); empty when absent. */
  sceneHint?: string;
  /** A question type decided elsewhere (e.g. by a router model); skips the rules. */
  questionType?: QuestionType;
}

/** Where the question type came from. */
export type QuestionTypeSource = 'request' | 'model' | 'rule' | 'no-rule';

/** The router's decision: which experts, with which prompts, and why. */
export interface RoutingDecision {
  task: Task;
  /** The chosen experts in fusion order, each with its rendered prompt and the reason. */
  experts: ExpertAssignment[];
  /** The question, trimmed and with single spaces (task `vqa`). */
  question?: string;
  /** Type of the question (task `vqa`). */
  questionType?: QuestionType;
  questionTypeSource?: QuestionTypeSource;
  /** True when no expert claimed the question type and every vqa expert was routed (dense fallback). */
  fallback: boolean;
}

export interface InstructionRouterOptions {
  /** Optional learned router; used by routeWithModel(). */
  model?: RouterModel;
}

/**
 * The Instruction Router: chooses experts from the pack manifest and writes each one's prompt.
 *
 * - Caption: every expert with a caption prompt, in fusion order.
 * - VQA (sparse): the question type (request → model → pack rules → built-in rules) selects the experts
 *   whose `questionTypes` include it. A type no expert lists (always so for `other`) falls back to every
 *   expert with a vqa prompt, so a question is never dropped; `fallback` says so.
 */
export class InstructionRouter {
  private readonly experts: readonly PackExpert[];
  private readonly rules: readonly QuestionRule[];
  private readonly model?: RouterModel;

  /** Whether routeWithModel consults a learned router (and so wants the image). */
  get hasModel(): boolean {
    return this.model !== undefined;
  }

  constructor(manifest: PackManifest, options: InstructionRouterOptions = {}) {
    this.experts = expertsInOrder(manifest);
    this.rules = [...compilePackRules(manifest.router.questionTypeRules), ...BUILT_IN_QUESTION_RULES];
    this.model = options.model;
  }

  /** Routes with rules only (synchronous, no I/O). Throws InvalidRoutingRequestError or NoExpertForTaskError. */
  route(request: RoutingRequest): RoutingDecision {
    const sceneHint = request.sceneHint?.replace(/\s+/g, ' ').trim() || undefined;
    if (request.task === 'caption') return this.routeCaption(sceneHint);
    if (request.task === 'vqa') return this.routeQuestion(request, sceneHint, request.questionType ? 'request' : undefined);
    throw new InvalidRoutingRequestError(`unknown task ${JSON.stringify(request.task)}`);
  }

  /**
   * Asks the router model (when there is one) for a scene class and question type, then routes.
   * The request's own sceneHint / questionType win over the model's.
   */
  async routeWithModel(request: RoutingRequest, image?: Uint8Array): Promise<RoutingDecision> {
    if (!this.model) return this.route(request);
    if (request.task === 'vqa') this.requireQuestion(request.question);
    const prediction = await this.model.predict({ task: request.task, question: request.question, image });
    const questionType = request.questionType ?? prediction.questionType;
    const sceneHint = (request.sceneHint ?? prediction.sceneClass)?.replace(/\s+/g, ' ').trim() || undefined;
    if (request.task === 'caption') return this.routeCaption(sceneHint);
    const source: QuestionTypeSource | undefined = request.questionType ? 'request' : prediction.questionType ? 'model' : undefined;
    return this.routeQuestion({ ...request, questionType }, sceneHint, source);
  }

  private routeCaption(sceneHint: string | undefined): RoutingDecision {
    const chosen = this.experts.filter((e) => e.prompts.caption !== undefined);
    if (chosen.length === 0) throw new NoExpertForTaskError('no expert of the pack has a caption prompt');
    return {
      task: 'caption',
      fallback: false,
      experts: chosen.map((expert, i) => ({
        expertId: expert.id,
        prompt: renderPrompt(expert.prompts.caption!, { scene: sceneHint }),
        reason: `caption: ${expert.id} has a caption prompt (fusion position ${i + 1} of ${chosen.length})`,
      })),
    };
  }

  private requireQuestion(question: string | undefined): string {
    const trimmed = question?.replace(/\s+/g, ' ').trim() ?? '';
    if (trimmed === '') throw new InvalidRoutingRequestError('a vqa request needs a non-empty question');
    return trimmed;
  }

  private routeQuestion(request: RoutingRequest, sceneHint: string | undefined, source: QuestionTypeSource | undefined): RoutingDecision {
    const question = this.requireQuestion(request.question);
    const answering = this.experts.filter((e) => e.prompts.vqa !== undefined);
    if (answering.length === 0) throw new NoExpertForTaskError('no expert of the pack has a vqa prompt');

    let questionType: QuestionType;
    let how: string;
    let questionTypeSource: QuestionTypeSource;
    if (request.questionType && source) {
      questionType = request.questionType;
      questionTypeSource = source;
      how = source === 'model' ? 'router model' : 'given';
    } else {
      const classification = classifyQuestion(question, this.rules);
      questionType = classification.type;
      questionTypeSource = classification.rule ? 'rule' : 'no-rule';
      how = classification.rule ? `rule "${classification.rule}"` : 'no rule matched';
    }

    const prompt = (expert: PackExpert) => renderPrompt(expert.prompts.vqa!, { question, scene: sceneHint });
    const owners = answering.filter((e) => e.questionTypes.includes(questionType));
    const fallback = owners.length === 0;
    const experts = fallback
      ? answering.map((expert) => ({
          expertId: expert.id,
          prompt: prompt(expert),
          reason: `question type ${questionType} (${how}) is in no expert's questionTypes: dense fallback to every vqa expert`,
        }))
      : owners.map((expert) => ({
          expertId: expert.id,
          prompt: prompt(expert),
          reason: `question type ${questionType} (${how}) ∈ ${expert.id}.questionTypes`,
        }));
    return { task: 'vqa', question, questionType, questionTypeSource, fallback, experts };
  }
}
