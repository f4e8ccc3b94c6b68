import { DEFAULT_ANSWER_FUSION, DEFAULT_CAPTION_FUSION, type ExpertId } from '@rsmoe/contracts';
import { majorityAnswer, priorityAnswer } from './answer-fusion';
import { concatCaptions, firstOkCaption, orderedDedupCaptions } from './caption-fusion';
import type { AnswerFusion, AnswerFusionStrategy, CaptionFusion, CaptionFusionStrategy, ExpertPartial } from './fusion.types';

/** Names of the built-in caption strategies. */
export const CAPTION_FUSION_STRATEGIES = Object.freeze(['ordered-dedup', 'concat', 'first-ok'] as const);
/** Names of the built-in answer strategies. */
export const ANSWER_FUSION_STRATEGIES = Object.freeze(['priority', 'majority'] as const);

/** The strategy name is not registered (a configuration error: check it at start-up with `has*`). */
export class UnknownFusionStrategyError extends Error {
  override readonly name = 'UnknownFusionStrategyError';
}

/** Named caption and answer strategies; the pack manifest and configuration refer to them by name. */
export class FusionRegistry {
  private readonly captions = new Map<string, CaptionFusionStrategy>();
  private readonly answers = new Map<string, AnswerFusionStrategy>();

  /** Adds a caption strategy; a taken name throws unless `replace` is set. */
  registerCaption(name: string, strategy: CaptionFusionStrategy, options: { replace?: boolean } = {}): this {
    register(this.captions, 'caption', name, strategy, options.replace);
    return this;
  }

  /** Adds an answer strategy; a taken name throws unless `replace` is set. */
  registerAnswer(name: string, strategy: AnswerFusionStrategy, options: { replace?: boolean } = {}): this {
    register(this.answers, 'answer', name, strategy, options.replace);
    return this;
  }

  hasCaption(name: string): boolean {
    return this.captions.has(name);
  }

  hasAnswer(name: string): boolean {
    return this.answers.has(name);
  }

  captionStrategy(name: string): CaptionFusionStrategy {
    return lookup(this.captions, 'caption', name);
  }

  answerStrategy(name: string): AnswerFusionStrategy {
    return lookup(this.answers, 'answer', name);
  }

  captionStrategyNames(): string[] {
    return [...this.captions.keys()];
  }

  answerStrategyNames(): string[] {
    return [...this.answers.keys()];
  }
}

function register<T>(map: Map<string, T>, kind: string, name: string, strategy: T, replace = false): void {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) throw new RangeError(`invalid ${kind} fusion strategy name ${JSON.stringify(name)}`);
  if (map.has(name) && !replace) throw new RangeError(`${kind} fusion strategy ${JSON.stringify(name)} is already registered`);
  map.set(name, strategy);
}

function lookup<T>(map: Map<string, T>, kind: string, name: string): T {
  const strategy = map.get(name);
  if (!strategy) throw new UnknownFusionStrategyError(`unknown ${kind} fusion strategy ${JSON.stringify(name)} (known: ${[...map.keys()].join(', ')})`);
  return strategy;
}

/** A registry holding the built-in strategies. */
export function createFusionRegistry(): FusionRegistry {
  return new FusionRegistry()
    .registerCaption('ordered-dedup', orderedDedupCaptions)
    .registerCaption('concat', concatCaptions)
    .registerCaption('first-ok', firstOkCaption)
    .registerAnswer('priority', priorityAnswer)
    .registerAnswer('majority', majorityAnswer);
}

/** The process-wide registry used when no registry is passed. */
export const defaultFusionRegistry = createFusionRegistry();

/** Adds a caption strategy to the default registry. */
export function registerCaptionFusion(name: string, strategy: CaptionFusionStrategy, options?: { replace?: boolean }): void {
  defaultFusionRegistry.registerCaption(name, strategy, options);
}

/** Adds an answer strategy to the default registry. */
export function registerAnswerFusion(name: string, strategy: AnswerFusionStrategy, options?: { replace?: boolean }): void {
  defaultFusionRegistry.registerAnswer(name, strategy, options);
}

export interface FuseOptions<Name extends string> {
  /** Strategy name (default `ordered-dedup` for captions, `priority` for answers). */
  strategy?: Name | (string & {});
  /** Expert ids in fusion / priority order (default: the order of `partials`). */
  order?: readonly ExpertId[];
  /** Registry to look the strategy up in (default: defaultFusionRegistry). */
  registry?: FusionRegistry;
}

/** Fuses partial captions into one caption. Throws UnknownFusionStrategyError for an unknown strategy. */
export function fuseCaptions(
  partials: readonly ExpertPartial[],
  options: FuseOptions<(typeof CAPTION_FUSION_STRATEGIES)[number]> = {},
): CaptionFusion & { strategy: string } {
  const strategy = options.strategy ?? DEFAULT_CAPTION_FUSION;
  const fn = (options.registry ?? defaultFusionRegistry).captionStrategy(strategy);
  return { ...fn(partials, { order: options.order ?? partials.map((p) => p.expertId) }), strategy };
}

/** Picks one answer from the experts' answers. Throws UnknownFusionStrategyError for an unknown strategy. */
export function fuseAnswers(
  partials: readonly ExpertPartial[],
  options: FuseOptions<(typeof ANSWER_FUSION_STRATEGIES)[number]> = {},
): AnswerFusion & { strategy: string } {
  const strategy = options.strategy ?? DEFAULT_ANSWER_FUSION;
  const fn = (options.registry ?? defaultFusionRegistry).answerStrategy(strategy);
  return { ...fn(partials, { order: options.order ?? partials.map((p) => p.expertId) }), strategy };
}
