import type { OpenAPIObject, ReferenceObject, SchemaObject } from '@nestjs/swagger';

type PathsObject = OpenAPIObject['paths'];

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } as ReferenceObject } } });

const usage: SchemaObject = {
  type: 'object',
  description: 'Prompt and generated tokens summed over the routed experts.',
  properties: { prompt_tokens: { type: 'integer' }, completion_tokens: { type: 'integer' }, total_tokens: { type: 'integer' } },
};

/** `POST /v1/chat/completions` and `GET /v1/models`, the OpenAI-compatible face of the mesh. */
export function openAiPaths(): PathsObject {
  return {
    '/v1/chat/completions': {
      post: {
        operationId: 'chatCompletion',
        summary: 'OpenAI-compatible chat completion: the last user message’s RSUniVLM tag picks the task',
        description:
          'The last user message is the request (system and assistant turns are accepted, not used). Its text may start with a tag: `[CAP]` caption, `[VQA]` question (the rest), `[CLS]` classification, `[VG]` grounding (the rest is the phrase), `[REF]` referring (the rest holds `[x1, y1, x2, y2]` in percent), `[SEG]` segmentation (comma-separated classes, or a phrase), `[CCD]` change caption of two images. Without a tag: two images are a change, one image with text a question, one image alone a caption. Images are `image_url` parts with base64 `data:` URLs only (400 image_url_not_allowed: the mesh fetches nothing from outside). The request then runs as the task’s own endpoint runs it: the same limits, deadline (`X-Request-Timeout-Ms`), `Idempotency-Key` and error codes; with API keys, the key must allow the task (403 forbidden). `max_tokens` → maxNewTokens, `temperature` (absent or 0: greedy; above 0: sampling), `top_p`, `seed`, `stop` → stopStrings. `stream: true` answers server-sent `chat.completion.chunk` events: the role; one chunk per expert as it finishes, with an empty `delta` and the expert’s partial in `rsmoe: {expert, partial}`; the answer’s text in `delta.content` (so joined deltas are exactly the non-streamed text); `finish_reason` with `usage` and the whole answer in `rsmoe`; then `data: [DONE]`. A failure before the first chunk is a JSON error with its status; after it, `data: {"error": …}` ends the stream. A client that disconnects cancels the request (its queued expert jobs are withdrawn, a running one stops at its next token, the images it stored are erased).',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['model', 'messages'],
                properties: {
                  model: { type: 'string', description: 'The loaded pack’s name (GET /v1/models); any other is 404 model_not_found.' },
                  messages: { type: 'array', items: { type: 'object', required: ['role', 'content'], properties: { role: { type: 'string', enum: ['system', 'user', 'assistant'] }, content: {} } } },
                  max_tokens: { type: 'integer', minimum: 1 },
                  max_completion_tokens: { type: 'integer', minimum: 1, description: 'Wins over max_tokens.' },
                  temperature: { type: 'number', minimum: 0 },
                  top_p: { type: 'number', exclusiveMinimum: true, minimum: 0, maximum: 1 },
                  seed: { type: 'integer', minimum: 0 },
                  stop: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
                  n: { type: 'integer', enum: [1], description: 'Only 1 (400 n_not_supported).' },
                  stream: { type: 'boolean' },
                  stream_options: { type: 'object', description: 'Accepted and ignored: the last chunk always carries `usage`.' },
                  user: { type: 'string', description: 'Accepted and ignored.' },
                },
              },
            },
          },
        },
        responses: {
          200: {
            description: '`chat.completion` (or, with `stream: true`, `text/event-stream` of `chat.completion.chunk`); `rsmoe` holds the mesh’s whole answer (experts, routing, timings, boxes, mask).',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: {
                    id: { type: 'string', description: '`chatcmpl-<requestId>`' },
                    object: { type: 'string', enum: ['chat.completion'] },
                    created: { type: 'integer' },
                    model: { type: 'string' },
                    choices: { type: 'array', items: { type: 'object', properties: { index: { type: 'integer' }, message: { type: 'object' }, finish_reason: { type: 'string', enum: ['stop', 'length'] } } } },
                    usage,
                    rsmoe: { type: 'object', description: 'The answer of the task’s own endpoint.' },
                  },
                },
              },
              'text/event-stream': { schema: { type: 'string' } },
            },
          },
          400: errorResponse('n_not_supported, image_url_not_allowed, invalid_field (a role other than system/user/assistant, a bad part), missing_field, unknown_field, missing_image, invalid_params, …: the task endpoints’ codes'),
          403: errorResponse('forbidden: the API key may not run the task the message asks for'),
          404: errorResponse('model_not_found: the model is not the loaded pack'),
          408: errorResponse('deadline_exceeded'),
          413: errorResponse('payload_too_large'),
          415: errorResponse('unsupported_media_type'),
          422: errorResponse('too_many_pixels, invalid_image, question_too_long, image_size_mismatch, task_not_supported'),
          502: errorResponse('router_error, experts_failed'),
          503: errorResponse('router_unavailable, experts_unavailable, storage_unavailable'),
        },
      },
    },
    '/v1/models': {
      get: {
        operationId: 'listModels',
        summary: 'OpenAI-compatible model list: the loaded pack',
        responses: {
          200: {
            description: '`{object: "list", data: [{id: <pack name>, object: "model", created, owned_by: "rsmoe-mesh"}]}`',
            content: { 'application/json': { schema: { type: 'object', properties: { object: { type: 'string', enum: ['list'] }, data: { type: 'array', items: { type: 'object' } } } } } },
          },
          502: errorResponse('router_error'),
          503: errorResponse('router_unavailable'),
        },
      },
    },
  };
}
