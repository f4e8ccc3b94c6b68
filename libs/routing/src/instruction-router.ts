import {
  CHANGE_MASK_CLASSES,
  MASK_BACKGROUND_LABEL,
  TASKS,
  TASK_GRANULARITY,
  TASK_TAGS,
  expertTasksOf,
  expertsInOrder,
  type ChangeOutput,
  type ExpertAssignment,
  type PackExpert,
  type PackManifest,
  type PercentBoxJson,
  type QuestionType,
  type Task,
  type TaskInputs,
} from '@rsmoe/contracts';
import { encodeBoxesText } from '@rsmoe/region-outputs';
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
  /** Grounding and segmentation: the phrase (fills `{query}`). */
  query?: string;
  /** Referring: the region (fills `{box}` as RSUniVLM writes boxes). */
  box?: PercentBoxJson;
  /** Segmentation: the classes to segment (default: the query, else the pack's segmentation labels). */
  classes?: readonly string[];
  /** Change: which outputs (default both). */
  changeOutput?: ChangeOutput;
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
  /** RSUniVLM's tasks: the inputs as resolved here (how the experts' texts are read when fusing). */
  inputs?: TaskInputs;
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
  private readonly labels: PackManifest['labels'];
  private readonly rules: readonly QuestionRule[];
  private readonly model?: RouterModel;

  /** Whether routeWithModel consults a learned router (and so wants the image). */
  get hasModel(): boolean {
    return this.model !== undefined;
  }

  constructor(manifest: PackManifest, options: InstructionRouterOptions = {}) {
    this.experts = expertsInOrder(manifest);
    this.labels = manifest.labels;
    this.rules = [...compilePackRules(manifest.router.questionTypeRules), ...BUILT_IN_QUESTION_RULES];
    this.model = options.model;
  }

  /** Routes with rules only (synchronous, no I/O). Throws InvalidRoutingRequestError or NoExpertForTaskError. */
  route(request: RoutingRequest): RoutingDecision {
    const sceneHint = request.sceneHint?.replace(/\s+/g, ' ').trim() || undefined;
    if (request.task === 'caption') return this.routeCaption(sceneHint);
    if (request.task === 'vqa') return this.routeQuestion(request, sceneHint, request.questionType ? 'request' : undefined);
    if ((TASKS as readonly string[]).includes(request.task)) return this.routeByTag(request, sceneHint);
    throw new InvalidRoutingRequestError(`unknown task ${JSON.stringify(request.task)}`);
  }

  /** The request tasks some expert of the pack serves. */
  get servedTasks(): Task[] {
    return TASKS.filter((task) => expertTasksOf(task).some((expertTask) => this.experts.some((e) => e.prompts[expertTask] !== undefined)));
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
    if (request.task !== 'vqa') return this.routeByTag(request, sceneHint);
    const source: QuestionTypeSource | undefined = request.questionType ? 'request' : prediction.questionType ? 'model' : undefined;
    return this.routeQuestion({ ...request, questionType }, sceneHint, source);
  }

  /**
   * RSUniVLM's rule: the task tag names a granularity, and the expert of that granularity with a prompt
   * for the task runs it (the first in fusion order; an expert without a declared granularity only when
   * none has one). A change request with both outputs runs two experts in parallel.
   */
  private routeByTag(request: RoutingRequest, sceneHint: string | undefined): RoutingDecision {
    const inputs = this.taskInputs(request);
    const expertTasks = expertTasksOf(request.task, request.changeOutput);
    const experts = expertTasks.map((expertTask): ExpertAssignment => {
      const candidates = this.experts.filter((e) => e.prompts[expertTask] !== undefined);
      if (candidates.length === 0) throw this.notServed(request.task, `no expert of the pack has a ${expertTask} prompt`);
      const granularity = TASK_GRANULARITY[expertTask];
      const expert = candidates.find((e) => e.granularity === granularity) ?? candidates.find((e) => e.granularity === undefined) ?? candidates[0];
      const how =
        expert.granularity === granularity
          ? `${TASK_TAGS[expertTask]} → the ${granularity}-level expert`
          : `${TASK_TAGS[expertTask]}: no ${granularity}-level expert; ${expert.id} has a ${expertTask} prompt`;
      return {
        expertId: expert.id,
        task: expertTask,
        prompt: renderPrompt(expert.prompts[expertTask]!, {
          scene: sceneHint,
          query: expertTask === 'segmentation' ? inputs.classes!.slice(1).join(', ') : inputs.query,
          box: inputs.box ? encodeBoxesText([{ unit: 'percent', ...inputs.box }]) : undefined,
        }),
        reason: `${request.task}: ${how} (${expert.id})`,
      };
    });
    const ids = experts.map((assignment) => assignment.expertId);
    if (new Set(ids).size < ids.length) {
      throw this.notServed(request.task, `the change caption and the change mask both route to expert ${ids[0]}: ask for output caption or mask`);
    }
    return { task: request.task, fallback: false, experts, inputs };
  }

  /** The inputs of a tag-routed request, resolved and checked (InvalidRoutingRequestError names the problem). */
  private taskInputs(request: RoutingRequest): TaskInputs {
    const query = request.query?.replace(/\s+/g, ' ').trim() || undefined;
    switch (request.task) {
      case 'classification':
        return { labels: [...this.labels.classification] };
      case 'grounding':
        if (!query) throw new InvalidRoutingRequestError('a grounding request needs a non-empty query');
        return { query };
      case 'referring':
        if (!request.box) throw new InvalidRoutingRequestError('a referring request needs a box');
        return { box: request.box };
      case 'segmentation': {
        const named = (request.classes ?? []).map((name) => name.replace(/\s+/g, ' ').trim()).filter(Boolean);
        const wanted = named.length > 0 ? named : query ? [query] : this.labels.segmentation;
        if (wanted.length === 0) throw new InvalidRoutingRequestError('a segmentation request needs classes or a query (the pack lists no segmentation labels)');
        const classes = [MASK_BACKGROUND_LABEL, ...new Set(wanted.filter((name) => name.toLowerCase() !== MASK_BACKGROUND_LABEL))];
        return { ...(query ? { query } : {}), classes };
      }
      case 'change':
        return request.changeOutput === 'caption' ? {} : { classes: [...CHANGE_MASK_CLASSES] };
      default:
        return {};
    }
  }

  private notServed(task: Task, why: string): NoExpertForTaskError {
    const served = this.servedTasks;
    return new NoExpertForTaskError(`task ${task} is not supported by this pack (${why}); it serves: ${served.join(', ') || 'nothing'}`, served);
  }

  private routeCaption(sceneHint: string | undefined): RoutingDecision {
    const chosen = this.experts.filter((e) => e.prompts.caption !== undefined);
    if (chosen.length === 0) throw this.notServed('caption', 'no expert of the pack has a caption prompt');
    return {
      task: 'caption',
      fallback: false,
      experts: chosen.map((expert, i) => ({
        expertId: expert.id,
        task: 'caption' as const,
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
    if (answering.length === 0) throw this.notServed('vqa', 'no expert of the pack has a vqa prompt');

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
          task: 'vqa' as const,
          prompt: prompt(expert),
          reason: `question type ${questionType} (${how}) is in no expert's questionTypes: dense fallback to every vqa expert`,
        }))
      : owners.map((expert) => ({
          expertId: expert.id,
          task: 'vqa' as const,
          prompt: prompt(expert),
          reason: `question type ${questionType} (${how}) ∈ ${expert.id}.questionTypes`,
        }));
    return { task: 'vqa', question, questionType, questionTypeSource, fallback, experts };
  }
}
