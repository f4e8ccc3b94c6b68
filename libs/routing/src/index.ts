export { InstructionRouter } from './instruction-router';
export type { InstructionRouterOptions, QuestionTypeSource, RoutingDecision, RoutingRequest } from './instruction-router';
export { BUILT_IN_QUESTION_RULES, classifyQuestion, compilePackRules, normaliseQuestion } from './question-classifier';
export type { QuestionClassification, QuestionRule } from './question-classifier';
export { renderPrompt } from './prompt-template';
export type { PromptValues } from './prompt-template';
export type { RouterModel, RouterModelInput, RouterPrediction } from './router-model';
export { InvalidRoutingRequestError, NoExpertForTaskError } from './errors';
