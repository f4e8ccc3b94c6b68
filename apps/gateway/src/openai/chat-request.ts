import type { Task } from '@rsmoe/contracts';
import { parseBoxesText } from '@rsmoe/region-outputs';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';

/**
 * An OpenAI chat completion request read as one of the mesh's tasks: which task, and the JSON body the
 * task's own endpoint would have received (the image intake validates it as it validates that endpoint's).
 */
export interface ChatTaskRequest {
  /** The `model` asked for: must be the loaded pack's name. */
  model: string;
  task: Task;
  /** The body of the task's JSON endpoint: base64 `data:` URL images, its fields and `params`. */
  body: Record<string, unknown>;
  stream: boolean;
}

/** Fields of the OpenAI request this endpoint reads; `user` and `stream_options` are accepted and ignored. */
const FIELDS: ReadonlySet<string> = new Set(['model', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'seed', 'stop', 'n', 'stream', 'stream_options', 'user']);

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant']);

/** RSUniVLM's task tags at the start of a prompt, and the task each asks for. */
const TAGS: Readonly<Record<string, Task>> = {
  CAP: 'caption',
  VQA: 'vqa',
  CLS: 'classification',
  VG: 'grounding',
  REF: 'referring',
  SEG: 'segmentation',
  CCD: 'change',
};

const LEADING_TAG = /^\[(CAP|VQA|CLS|VG|REF|SEG|CCD)\]/i;
/** LLaVA-style image placeholders some clients copy from RSUniVLM's prompts: the images travel as parts. */
const IMAGE_PLACEHOLDER = /<image>/gi;

function badRequest(code: (typeof ERROR_CODES)[keyof typeof ERROR_CODES], message: string): GatewayError {
  return new GatewayError(400, code, message);
}

/** The text and the images (data URLs) of the last user message. */
function userTurn(messages: unknown): { text: string; images: string[] } {
  if (!Array.isArray(messages) || messages.length === 0) throw badRequest(ERROR_CODES.missingField, '"messages" must be a non-empty list');
  let last: Record<string, unknown> | undefined;
  messages.forEach((message: unknown, index) => {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) throw badRequest(ERROR_CODES.invalidField, `messages[${index}] must be an object`);
    const { role } = message as Record<string, unknown>;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw badRequest(ERROR_CODES.invalidField, `messages[${index}].role ${JSON.stringify(role)} is not supported: use system, user or assistant`);
    }
    if (role === 'user') last = message as Record<string, unknown>;
  });
  if (last === undefined) throw badRequest(ERROR_CODES.missingField, 'no user message: the last user message is the request');
  const { content } = last;
  if (typeof content === 'string') return { text: content, images: [] };
  if (!Array.isArray(content)) throw badRequest(ERROR_CODES.invalidField, 'a user message’s content must be a string or a list of parts');
  const texts: string[] = [];
  const images: string[] = [];
  for (const part of content as unknown[]) {
    const { type, text, image_url: imageUrl } = (typeof part === 'object' && part !== null ? part : {}) as Record<string, unknown>;
    if (type === 'text' && typeof text === 'string') texts.push(text);
    else if (type === 'image_url') images.push(imageUrlOf(imageUrl));
    else throw badRequest(ERROR_CODES.invalidField, 'content parts must be {"type":"text","text":…} or {"type":"image_url","image_url":{"url":…}}');
  }
  return { text: texts.join('\n'), images };
}

function imageUrlOf(value: unknown): string {
  const url = typeof value === 'string' ? value : typeof value === 'object' && value !== null ? (value as { url?: unknown }).url : undefined;
  if (typeof url !== 'string' || url === '') throw badRequest(ERROR_CODES.missingImage, 'an image_url part needs a "url" (a base64 data: URL)');
  if (!/^data:/i.test(url)) {
    throw badRequest(ERROR_CODES.imageUrlNotAllowed, 'image_url must be a base64 data: URL (data:image/png;base64,…): the mesh fetches nothing from outside');
  }
  return url;
}

/** `[REF]`'s region: RSUniVLM's `[x1, y1, x2, y2]` in percent, as the intake's [0, 1] (`norm`) box. */
function referringBox(rest: string): { box: number[]; units: 'norm' } {
  const parsed = parseBoxesText(rest);
  if (parsed.kind !== 'boxes') throw badRequest(ERROR_CODES.missingField, 'a [REF] message needs a box [x1, y1, x2, y2] in percent of the image, e.g. "[REF] [10, 20, 56, 80]"');
  const [box] = parsed.boxes;
  return { box: [box.x1, box.y1, box.x2, box.y2].map((value) => value / 100), units: 'norm' };
}

/** The task and its fields from the prompt's leading tag, the rest of the text and the number of images. */
function taskOf(text: string, images: string[]): { task: Task; fields: Record<string, unknown> } {
  const prompt = text.replace(IMAGE_PLACEHOLDER, ' ').trim();
  const tag = LEADING_TAG.exec(prompt);
  const rest = tag ? prompt.slice(tag[0].length).trim() : prompt;
  const task = tag ? TAGS[tag[1].toUpperCase()] : images.length === 2 ? 'change' : rest === '' ? 'caption' : 'vqa';
  if (task === 'change') {
    if (images.length > 2) throw badRequest(ERROR_CODES.invalidField, `a change request sends two images (before, after); this message has ${images.length}`);
    // The chat answer is the change caption; a mask would cost the pixel expert for text nobody reads.
    return { task, fields: { ...(images[0] !== undefined ? { before: images[0] } : {}), ...(images[1] !== undefined ? { after: images[1] } : {}), output: 'caption' } };
  }
  if (images.length > 1) throw badRequest(ERROR_CODES.invalidField, `${task} takes one image; this message has ${images.length} (two images are a change request: [CCD])`);
  const image = images.length === 1 ? { image: images[0] } : {};
  switch (task) {
    case 'vqa':
      return { task, fields: { ...image, question: rest } };
    case 'grounding':
      return { task, fields: { ...image, query: rest } };
    case 'referring':
      return { task, fields: { ...image, ...referringBox(rest) } };
    case 'segmentation':
      return { task, fields: { ...image, ...(rest.includes(',') ? { classes: rest.split(',') } : { query: rest }) } };
    default:
      return { task, fields: image };
  }
}

/** OpenAI's sampling fields as GenerationParams (the intake checks their values and bounds). */
function paramsOf(body: Record<string, unknown>): Record<string, unknown> {
  const { max_tokens: maxTokens, max_completion_tokens: maxCompletionTokens, temperature, top_p: topP, seed, stop } = body;
  const params: Record<string, unknown> = {};
  const maxNewTokens = maxCompletionTokens ?? maxTokens;
  if (maxNewTokens !== undefined && maxNewTokens !== null) params.maxNewTokens = maxNewTokens;
  // OpenAI's temperature 0 (or none) is greedy decoding; above 0 samples at that temperature.
  if (typeof temperature === 'number' && temperature > 0) Object.assign(params, { doSample: true, temperature });
  else if (temperature === undefined || temperature === null || temperature === 0) params.doSample = false;
  else params.temperature = temperature;
  if (topP !== undefined && topP !== null) params.topP = topP;
  if (seed !== undefined && seed !== null) params.seed = seed;
  if (stop !== undefined && stop !== null) params.stopStrings = typeof stop === 'string' ? [stop] : stop;
  return params;
}

/**
 * Reads an OpenAI chat completion request: the last user message is the request (system and assistant
 * turns are accepted and not used: every request is one turn); its leading RSUniVLM tag picks the task
 * (`[CAP]` `[VQA]` `[CLS]` `[VG]` `[REF]` `[SEG]` `[CCD]`); without one, two images are a change, one image
 * with text a question, one image alone a caption.
 */
export function readChatRequest(value: unknown): ChatTaskRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest(ERROR_CODES.badRequest, 'the body must be a JSON object');
  const body = value as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (!FIELDS.has(key)) throw badRequest(ERROR_CODES.unknownField, `unknown field "${key}" (accepted: ${[...FIELDS].join(', ')})`);
  }
  if (typeof body.model !== 'string' || body.model === '') throw badRequest(ERROR_CODES.missingField, '"model" is required: the pack name GET /v1/models lists');
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw badRequest(ERROR_CODES.nNotSupported, 'n must be 1: one choice per request');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw badRequest(ERROR_CODES.invalidField, 'stream must be a boolean');
  const { text, images } = userTurn(body.messages);
  const { task, fields } = taskOf(text, images);
  const params = paramsOf(body);
  return { model: body.model, task, body: { ...fields, ...(Object.keys(params).length > 0 ? { params } : {}) }, stream: body.stream === true };
}
