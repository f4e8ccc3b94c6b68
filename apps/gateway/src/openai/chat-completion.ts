import type { InferenceResultJson } from '@rsmoe/contracts';
import { encodeBoxesText } from '@rsmoe/region-outputs';
import type { ExpertOutputJson } from '@rsmoe/contracts';
import { partialEvent, type ExpertPartialEvent } from '../streaming/event-stream';
import type { TaskAnswer } from '../tasks/task-answer';

/** What the mesh answered: a caption / answer result, or a task answer (boxes in px and [0, 1], a rendered mask). */
export type MeshAnswer = InferenceResultJson | TaskAnswer;

export type FinishReason = 'stop' | 'length';

/** OpenAI's token counts, summed over the routed experts. */
export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** `chat.completion`, plus the mesh's whole answer in `rsmoe`. */
export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  /** Unix seconds. */
  created: number;
  model: string;
  choices: Array<{ index: 0; message: { role: 'assistant'; content: string }; finish_reason: FinishReason; logprobs: null }>;
  usage: ChatUsage;
  /** The mesh's own answer: experts, routing, timings, boxes, mask… */
  rsmoe: MeshAnswer;
}

/** One `chat.completion.chunk` of a streamed answer. */
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{ index: 0; delta: { role?: 'assistant'; content?: string }; finish_reason: FinishReason | null; logprobs: null }>;
  usage?: ChatUsage;
  /** An expert's partial (`{expert, partial}`, on a chunk with an empty delta), or on the last chunk the mesh's whole answer. */
  rsmoe?: MeshAnswer | ExpertPartialEvent;
}

const percent = (fraction: number): string => `${(100 * fraction).toFixed(1)}%`;

/**
 * The answer as chat text: the caption, the answer, the label, the boxes as RSUniVLM writes them
 * (`[x1, y1, x2, y2]` in whole percent), the region's or the change's caption, or for a mask its classes
 * with their share of the image.
 */
export function answerText(answer: MeshAnswer): string {
  switch (answer.task) {
    case 'caption':
    case 'referring':
      return answer.caption ?? '';
    case 'vqa':
      return answer.answer ?? '';
    case 'classification':
      return answer.label ?? '';
    case 'grounding': {
      const boxes = (answer as TaskAnswer).boxes ?? [];
      if (boxes.length === 0) return 'no box found';
      // Clamped: [0, 1] × 100 may overshoot 100 by a rounding error.
      const clamp = (value: number) => Math.min(100, Math.max(0, 100 * value));
      return encodeBoxesText(boxes.map(({ boxNorm: [x1, y1, x2, y2] }) => ({ unit: 'percent' as const, x1: clamp(x1), y1: clamp(y1), x2: clamp(x2), y2: clamp(y2) })));
    }
    case 'segmentation': {
      const classes = (answer as TaskAnswer).mask?.classes ?? [];
      return classes.length === 0 ? 'no mask' : classes.map((entry) => `${entry.name}: ${percent(entry.areaFraction)}`).join(', ');
    }
    case 'change': {
      const { caption, changedFraction } = answer as TaskAnswer;
      return caption ?? (changedFraction !== undefined ? `changed: ${percent(changedFraction)} of the image` : '');
    }
  }
}

/** Token counts summed over the experts that ran (their prompt and generated tokens). */
export function usageOf(answer: MeshAnswer): ChatUsage {
  let prompt = 0;
  let completion = 0;
  for (const expert of answer.experts) {
    prompt += expert.promptTokens ?? 0;
    completion += expert.generatedTokens ?? 0;
  }
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** `length` when an expert whose output made the answer stopped at its token limit, else `stop`. */
export function finishReasonOf(answer: MeshAnswer): FinishReason {
  return answer.experts.some((expert) => expert.status === 'ok' && expert.finishReason === 'length') ? 'length' : 'stop';
}

/** The `id` of the completion of mesh request `requestId`. */
export const completionId = (requestId: string): string => `chatcmpl-${requestId}`;

export function chatCompletion(answer: MeshAnswer, model: string, createdUnixS: number): ChatCompletion {
  return {
    id: completionId(answer.requestId),
    object: 'chat.completion',
    created: createdUnixS,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: answerText(answer) }, finish_reason: finishReasonOf(answer), logprobs: null }],
    usage: usageOf(answer),
    rsmoe: answer,
  };
}

/** The fields every chunk of one streamed completion shares. */
function chunkHead(requestId: string, model: string, createdUnixS: number): Pick<ChatCompletionChunk, 'id' | 'object' | 'created' | 'model'> {
  return { id: completionId(requestId), object: 'chat.completion.chunk', created: createdUnixS, model };
}

const choice = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: FinishReason | null = null): ChatCompletionChunk['choices'] => [
  { index: 0, delta, finish_reason: finish, logprobs: null },
];

/** The first chunk of a stream: the assistant's role, no text yet. */
export function roleChunk(requestId: string, model: string, createdUnixS: number): ChatCompletionChunk {
  return { ...chunkHead(requestId, model, createdUnixS), choices: choice({ role: 'assistant', content: '' }) };
}

/**
 * An expert's output as it finishes: a chunk with an empty delta (a client that joins the deltas gets only the
 * answer's text) and the partial in `rsmoe: {expert, partial}`.
 */
export function partialChunk(requestId: string, model: string, createdUnixS: number, output: ExpertOutputJson): ChatCompletionChunk {
  return { ...chunkHead(requestId, model, createdUnixS), choices: choice({}), rsmoe: partialEvent(output) };
}

/**
 * The chunks of the answer, after the role and the partials: the text (one chunk: the mesh fuses its text once
 * every expert has answered, so the answer is never partial), then the finish reason with the usage and the
 * mesh's whole answer.
 */
export function answerChunks(answer: MeshAnswer, model: string, createdUnixS: number): ChatCompletionChunk[] {
  const head = chunkHead(answer.requestId, model, createdUnixS);
  return [
    { ...head, choices: choice({ content: answerText(answer) }) },
    { ...head, choices: choice({}, finishReasonOf(answer)), usage: usageOf(answer), rsmoe: answer },
  ];
}
