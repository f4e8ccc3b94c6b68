import { DocumentBuilder, type OpenAPIObject, type ParameterObject, type ReferenceObject, type SchemaObject } from '@nestjs/swagger';
import { CHANGE_OUTPUTS, EXPERT_ERROR_CODES, EXPERT_STATUSES, EXPERT_TASKS, TASKS } from '@rsmoe/contracts';
import type { GatewayConfig } from '../gateway.config';
import { openAiPaths } from '../openai/openai.openapi';
import { scenePaths } from '../scenes/scenes.openapi';

type Schema = SchemaObject;

const ref = (name: string): ReferenceObject => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema | ReferenceObject) => ({ 'application/json': { schema } });
const errorResponse = (description: string) => ({ description, content: json(ref('ErrorResponse')) });
const ms = (description: string): Schema => ({ type: 'number', minimum: 0, description });

/**
 * The OpenAPI document, written out explicitly: the services run under tsx, which emits no decorator
 * metadata, so @nestjs/swagger could not reflect types from the controllers. Keep it in step with the
 * controllers (gateway.app.spec.ts checks every route is documented).
 */
export function buildOpenApiDocument(config: GatewayConfig): OpenAPIObject {
  const limits = `Limits: ${config.MAX_IMAGE_BYTES} bytes, ${config.MAX_IMAGE_PIXELS} pixels (width × height from the header).`;
  const timeoutMs: Schema = {
    type: 'integer',
    minimum: 1,
    maximum: config.MAX_REQUEST_TIMEOUT_MS,
    description: `Deadline of the request in ms (default ${config.REQUEST_TIMEOUT_MS}, at most ${config.MAX_REQUEST_TIMEOUT_MS}).`,
  };
  const question: Schema = { type: 'string', minLength: 1, maxLength: config.MAX_QUESTION_CHARS, example: 'How many buildings are there?' };
  const base64Image: Schema = {
    type: 'string',
    description: `PNG, JPEG, WebP or TIFF/GeoTIFF as base64 or a base64 data URL (format sniffed from the bytes). ${limits}`,
  };
  const fileImage: Schema = { type: 'string', format: 'binary', description: `PNG, JPEG, WebP or TIFF/GeoTIFF. ${limits}` };
  const paramsText: Schema = { type: 'string', description: 'GenerationParams as JSON text.', example: '{"maxNewTokens":32}' };
  const clientId: Schema = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' };
  const headers: ParameterObject[] = [
    {
      name: 'X-Correlation-Id',
      in: 'header',
      required: false,
      schema: clientId,
      description: 'The client’s own id for the request: echoed as `X-Correlation-Id` and in the result as `correlationId`; never a key (400 invalid_correlation_id when malformed).',
    },
    {
      name: 'X-Request-Id',
      in: 'header',
      required: false,
      schema: clientId,
      description: 'Read as a correlation id when `X-Correlation-Id` is absent (400 invalid_request_id when malformed). The mesh’s own request id is always made by the gateway and returned in the `X-Request-Id` response header.',
    },
    {
      name: 'traceparent',
      in: 'header',
      required: false,
      schema: { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' },
      description: 'W3C trace context: the trace continues under a new gateway span (a new trace when absent or invalid), forwarded to the router and returned.',
    },
  ];
  const idHeaders = {
    'X-Request-Id': { description: 'The mesh’s request id: 32 hex characters, unguessable; the key of `GET /v1/requests/{id}`.', schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } },
    'X-Correlation-Id': { description: 'The client’s id, when it sent one.', schema: clientId },
    traceparent: { description: 'The gateway span’s W3C trace context.', schema: { type: 'string' } },
  };
  const withIds = <T extends object>(response: T) => ({ ...response, headers: idHeaders });
  const inferenceHeaders: ParameterObject[] = [
    ...headers,
    { name: 'X-Request-Timeout-Ms', in: 'header', required: false, schema: timeoutMs, description: 'Deadline in ms; the smaller of this and `timeoutMs` wins.' },
    {
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
      description:
        'The same key with the same request (task, images, fields) within the result TTL answers what the first one answered (`Idempotent-Replayed: true`) instead of running again; with API keys, only for the same key (422 idempotency_key_reused for another request, 409 idempotent_request_pending while the first runs). Transient failures (5xx, 408, 429) are forgotten, so a retry runs.',
    },
    {
      name: 'Accept',
      in: 'header',
      required: false,
      schema: { type: 'string', example: 'text/event-stream' },
      description:
        '`text/event-stream`: server-sent events instead of one JSON answer: `event: partial` with `{expert, partial}` (that expert’s output: text, status, tokens, timings) as each expert finishes, then `event: result` with the body the JSON answer would have. A failure before the first event is the usual JSON error with its status; after it, `event: error` with the error body ends the stream. A client that disconnects cancels the request: its queued expert jobs are withdrawn, a job an expert already runs stops at its next token, and the images it stored are erased. `Prefer: respond-async` wins over it.',
    },
    {
      name: 'Prefer',
      in: 'header',
      required: false,
      schema: { type: 'string', example: 'respond-async' },
      description:
        '`respond-async` (RFC 7240): after validation and storing the image(s), answer 202 with `Location: /v1/requests/{id}` at once; GET it (202 while running) for the answer or its error.',
    },
  ];
  const longTimeout = `Deadline in ms (default ${config.LONG_TASK_TIMEOUT_MS}, at most ${config.MAX_LONG_TASK_TIMEOUT_MS}: masks are long text).`;
  const longTimeoutMs: Schema = { ...timeoutMs, maximum: config.MAX_LONG_TASK_TIMEOUT_MS, description: longTimeout };
  const query: Schema = { type: 'string', minLength: 1, maxLength: config.MAX_QUESTION_CHARS, example: 'the runway' };
  const boxNumbers: Schema = { type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 4, description: '[x1, y1, x2, y2]: top-left and bottom-right corners.' };
  const units: Schema = { type: 'string', enum: ['px', 'norm'], default: 'px', description: 'px: pixels (continuous coordinates); norm: [0, 1] of width and height.' };
  const classes: Schema = {
    type: 'array',
    items: { type: 'string', maxLength: 64, pattern: '^[^*,\\r\\n]+$' },
    maxItems: 64,
    description: 'Class names to segment (multipart: comma-separated or a JSON array). Without classes or a query: the pack’s segmentation labels.',
  };
  const changeOutput: Schema = { type: 'string', enum: [...CHANGE_OUTPUTS], default: 'both' };
  /** The request bodies of an RSUniVLM task: multipart and JSON, with the task's own fields. */
  const taskBody = (fields: Record<string, { multipart: Schema; json: Schema; required?: boolean }>, images: string[], long = false) => {
    const imageFields = (schema: Schema) => Object.fromEntries(images.map((name) => [name, schema]));
    const required = [...images, ...Object.entries(fields).flatMap(([name, field]) => (field.required ? [name] : []))];
    const textTimeout = { type: 'string', description: long ? longTimeout : timeoutMs.description } as Schema;
    return {
      required: true,
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            required,
            properties: { ...imageFields(fileImage), ...Object.fromEntries(Object.entries(fields).map(([name, field]) => [name, field.multipart])), params: paramsText, timeoutMs: textTimeout },
          },
        },
        'application/json': {
          schema: {
            type: 'object',
            required,
            additionalProperties: false,
            properties: {
              ...imageFields(base64Image),
              ...Object.fromEntries(Object.entries(fields).map(([name, field]) => [name, field.json])),
              params: ref('GenerationParams'),
              timeoutMs: long ? longTimeoutMs : timeoutMs,
            },
          },
        },
      },
    };
  };
  /** With `Accept: text/event-stream` (see that header): the partial, result and error events. */
  const eventStream = { 'text/event-stream': { schema: { type: 'string', description: '`event: partial` … `event: result` (or `event: error`), each `data:` one JSON object.' } as Schema } };
  const taskResponses = (description: string, extra422 = '') => ({
    ...inferenceResponses,
    200: withIds({ description, content: { ...json(ref('TaskAnswer')), ...eventStream } }),
    202: withIds({ description: 'Submitted (`Prefer: respond-async`): GET the `Location` for the answer.', content: json(ref('PendingAnswer')) }),
    400: errorResponse('as for captions, and missing_field, invalid_field (query, box, units, classes, output; the message names the problem)'),
    422: errorResponse(`too_many_pixels, invalid_image, question_too_long (the query), task_not_supported (no expert of the pack serves the task; the message lists the tasks it serves)${extra422}`),
    502: errorResponse('experts_failed (every routed expert failed, timed out or wrote text that is not the task’s output: `unparseable`; `error.details.experts` lists each), router_error'),
  });
  const inferenceResponses = {
    200: withIds({ description: 'The fused result (`degraded: true` when some, not all, experts are missing).', content: { ...json(ref('InferenceResult')), ...eventStream } }),
    400: errorResponse(
      'missing_image, invalid_base64, missing_question, invalid_question, invalid_params (the message names the field; bounds: maxNewTokens ≤ ' +
        `${config.MAX_NEW_TOKENS}, numBeams ≤ ${config.MAX_BEAMS}, no doSample with numBeams > 1, at most ${config.MAX_STOP_STRINGS} stopStrings of ${config.MAX_STOP_STRINGS_CHARS} characters together), ` +
        'invalid_timeout, unknown_field, invalid_json (also: nested deeper than 32 levels), invalid_multipart, invalid_request_id, invalid_correlation_id, invalid_argument',
    ),
    408: errorResponse('deadline_exceeded; body_timeout (no body byte for BODY_IDLE_TIMEOUT_MS; the connection is closed)'),
    413: errorResponse(`payload_too_large (a JSON body over ${config.MAX_JSON_BODY_BYTES} bytes: send large images as multipart)`),
    415: errorResponse('unsupported_media_type (the message names the format found)'),
    422: errorResponse('too_many_pixels, invalid_image (found here or by every expert), question_too_long'),
    429: {
      ...errorResponse('overloaded: the mesh refused the request for lack of capacity; retry after `Retry-After` seconds'),
      headers: { 'Retry-After': { description: 'Seconds to wait (at least 1).', schema: { type: 'integer', minimum: 1 } } },
    },
    502: errorResponse('experts_failed (no expert produced an output; `error.details.experts` lists each expert’s status, errorCode and error), router_error'),
    503: {
      ...errorResponse(
        'router_unavailable (the router cannot be reached), experts_unavailable (no routed expert has a live worker; the message names them), ' +
          'image_lost (the image stored for this request was lost by the blob store, e.g. a Redis restart: send it again), storage_unavailable',
      ),
      headers: { 'Retry-After': { description: 'Seconds to wait, on experts_unavailable and image_lost.', schema: { type: 'integer', minimum: 1 } } },
    },
  };

  const document = new DocumentBuilder()
    .setTitle('RS-MoE Mesh gateway')
    .setDescription(
      'Captions, visual question answering, scene classification, grounding, referring, segmentation and change detection for remote-sensing images, served by a mixture of expert VLMs.',
    )
    .setVersion('0.1.0')
    .build();

  const openApi: OpenAPIObject = {
    ...document,
    paths: {
      '/v1/captions': {
        post: {
          operationId: 'caption',
          summary: 'Caption an image',
          parameters: inferenceHeaders,
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: { type: 'object', required: ['image'], properties: { image: fileImage, params: paramsText, timeoutMs: { type: 'string', description: timeoutMs.description } } },
              },
              'application/json': {
                schema: { type: 'object', required: ['image'], additionalProperties: false, properties: { image: base64Image, params: ref('GenerationParams'), timeoutMs } },
              },
            },
          },
          responses: inferenceResponses,
        },
      },
      '/v1/vqa': {
        post: {
          operationId: 'answer',
          summary: 'Answer a question about an image',
          parameters: inferenceHeaders,
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  required: ['image', 'question'],
                  properties: { image: fileImage, question, params: paramsText, timeoutMs: { type: 'string', description: timeoutMs.description } },
                },
              },
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['image', 'question'],
                  additionalProperties: false,
                  properties: { image: base64Image, question, params: ref('GenerationParams'), timeoutMs },
                },
              },
            },
          },
          responses: inferenceResponses,
        },
      },
      '/v1/classify': {
        post: {
          operationId: 'classify',
          summary: 'Classify the scene ([CLS], image-level expert): one of the pack’s labels',
          parameters: inferenceHeaders,
          requestBody: taskBody({}, ['image']),
          responses: taskResponses('`label`: the scene class; `labelScores`: every pack label’s probability.'),
        },
      },
      '/v1/grounding': {
        post: {
          operationId: 'grounding',
          summary: 'Find a phrase ([VG], region-level expert): zero or more boxes',
          parameters: inferenceHeaders,
          requestBody: taskBody({ query: { multipart: query, json: query, required: true } }, ['image']),
          responses: taskResponses('`boxes`: each with `boxPx`, `boxNorm` and the `phrase`.'),
        },
      },
      '/v1/referring': {
        post: {
          operationId: 'referring',
          summary: 'Describe a region ([REF], region-level expert)',
          parameters: inferenceHeaders,
          requestBody: taskBody(
            {
              box: { multipart: { type: 'string', description: '"x1,y1,x2,y2" or a JSON array.' }, json: boxNumbers, required: true },
              units: { multipart: units, json: units },
            },
            ['image'],
          ),
          responses: taskResponses('`caption`: the description; `box`: the region in px and [0, 1].'),
        },
      },
      '/v1/segmentation': {
        post: {
          operationId: 'segmentation',
          summary: 'Segment classes or a phrase ([SEG], pixel-level expert): a label mask',
          parameters: inferenceHeaders,
          requestBody: taskBody({ classes: { multipart: { type: 'string', description: classes.description }, json: classes }, query: { multipart: query, json: query } }, ['image'], true),
          responses: taskResponses('`mask`: single-channel PNG (pixel = index into `mask.classes`, 255 = ignore) and per class its COCO RLE and area fraction.'),
        },
      },
      '/v1/changes': {
        post: {
          operationId: 'changes',
          summary: 'What changed between two co-registered images: a change caption ([CCD], image-level) and/or a change mask ([SEG], pixel-level)',
          parameters: inferenceHeaders,
          requestBody: taskBody({ output: { multipart: changeOutput, json: changeOutput } }, ['before', 'after'], true),
          responses: taskResponses('`caption`, `mask` (classes others, changed) and `changedFraction`, as `output` asks.', ', image_size_mismatch (the two images differ in size)'),
        },
      },
      '/v1/requests/{id}': {
        get: {
          operationId: 'getRequest',
          summary: 'The answer of an asynchronous request, or a stored result (kept for their TTLs), by the mesh request id only',
          description:
            'Only the unguessable mesh id (the `X-Request-Id` response header of the request that made it) finds a result; a client’s own id never does.',
          parameters: [...headers, { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } }],
          responses: {
            200: { description: 'The answer (an asynchronous request), or the stored result.', content: json({ oneOf: [ref('InferenceResult'), ref('TaskAnswer')] }) },
            202: { description: 'An asynchronous request still running.', content: json(ref('PendingAnswer')), headers: { 'Retry-After': { schema: { type: 'integer' } } } },
            '4XX': errorResponse('An asynchronous request that ended in an error answers with that error’s status and body.'),
            400: errorResponse('invalid_request_id'),
            404: errorResponse('request_not_found'),
            503: errorResponse('storage_unavailable'),
          },
        },
        delete: {
          operationId: 'deleteRequest',
          summary: 'Erase a request before its TTLs end: its result and async answer, the images it stored and their cached image features',
          description:
            'With API keys on, only the key that made the request. Images are content-addressed: an identical image another request stored is erased too. Copies of image features held in an expert’s memory age out of its bounded cache.',
          parameters: [...headers, { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } }],
          responses: {
            204: { description: 'Erased.' },
            400: errorResponse('invalid_request_id'),
            404: errorResponse('request_not_found (unknown, expired, already erased, or not the caller’s)'),
            409: errorResponse('request_pending: an asynchronous request still running'),
            503: errorResponse('storage_unavailable'),
          },
        },
      },
      '/v1/experts': {
        get: {
          operationId: 'listExperts',
          summary: 'The experts of the loaded model pack',
          parameters: headers,
          responses: {
            200: { description: 'Experts in fusion order.', content: json(ref('ExpertList')) },
            408: errorResponse('deadline_exceeded'),
            502: errorResponse('router_error'),
            503: errorResponse('router_unavailable'),
          },
        },
      },
      ...openAiPaths(),
      ...scenePaths(config),
      '/v2/health/live': {
        get: {
          operationId: 'live',
          summary: 'Liveness',
          responses: { 200: { description: 'The process answers.', content: json({ type: 'object', properties: { status: { type: 'string', enum: ['live'] } } }) } },
        },
      },
      '/v2/health/ready': {
        get: {
          operationId: 'ready',
          summary: 'Readiness: Redis answers PING, the router reports SERVING (pack loaded), and every task has an expert with a live worker',
          responses: {
            200: {
              description: 'Ready; `degraded` when some experts are down (listed in `down`) while every task still has a live one.',
              content: json({
                type: 'object',
                properties: {
                  status: { type: 'string', enum: ['ready'] },
                  degraded: { type: 'boolean' },
                  down: { type: 'array', items: { type: 'string' } },
                  checks: ref('ReadinessChecks'),
                },
              }),
            },
            503: errorResponse('not_ready; `error.details.checks` says which check failed (`experts.unservedTasks`: tasks with no live expert)'),
          },
        },
      },
    },
    components: {
      schemas: {
        ErrorResponse: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message', 'requestId'],
              properties: {
                code: { type: 'string', description: 'Stable error code.', example: 'unsupported_media_type' },
                message: { type: 'string' },
                requestId: { type: 'string', description: 'The mesh request id (also the `X-Request-Id` response header).' },
                details: { type: 'object', additionalProperties: true },
              },
            },
          },
        },
        GenerationParams: {
          type: 'object',
          additionalProperties: false,
          description: 'Decoding overrides; an unset field keeps the pack / model default.',
          properties: {
            maxNewTokens: { type: 'integer', minimum: 1, maximum: config.MAX_NEW_TOKENS },
            numBeams: { type: 'integer', minimum: 1, maximum: config.MAX_BEAMS },
            doSample: { type: 'boolean', description: 'Not with numBeams > 1.' },
            temperature: { type: 'number', minimum: 0, exclusiveMinimum: true },
            topK: { type: 'integer', minimum: 0 },
            topP: { type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 1 },
            seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
            repetitionPenalty: { type: 'number', minimum: 0, exclusiveMinimum: true },
            lengthPenalty: { type: 'number' },
            stopStrings: {
              type: 'array',
              maxItems: config.MAX_STOP_STRINGS,
              items: { type: 'string', minLength: 1 },
              description: `At most ${config.MAX_STOP_STRINGS_CHARS} characters together.`,
            },
          },
        },
        ExpertOutput: {
          type: 'object',
          required: ['expertId', 'prompt', 'text', 'status', 'promptTokens', 'generatedTokens', 'timings', 'model', 'featuresCached'],
          properties: {
            expertId: { type: 'string' },
            prompt: { type: 'string' },
            text: { type: 'string' },
            status: { type: 'string', enum: [...EXPERT_STATUSES], description: '`unparseable`: the text is not the task’s output (kept in `text`).' },
            error: { type: 'string' },
            errorCode: {
              type: 'string',
              enum: [...EXPERT_ERROR_CODES],
            },
            promptTokens: { type: 'integer' },
            generatedTokens: { type: 'integer' },
            finishReason: { type: 'string', enum: ['eos', 'stop_string', 'length'] },
            timings: {
              type: 'object',
              properties: {
                queueMs: ms('Enqueue to pick-up.'),
                preprocessMs: ms('Image fetch, decode, resize, normalise.'),
                visionEncodeMs: ms('Vision encoder (0 when cached).'),
                prefillMs: ms('First decoder pass.'),
                decodeMs: ms('Incremental decoder steps.'),
                timeToFirstTokenMs: ms('Pick-up to first token.'),
                computeMs: ms('Pick-up to text ready.'),
              },
            },
            model: { type: 'string' },
            featuresCached: { type: 'boolean' },
          },
        },
        InferenceResult: {
          type: 'object',
          required: ['requestId', 'task', 'experts', 'routed', 'degraded', 'missingExperts', 'timings', 'packName', 'packVersion', 'fusionStrategy'],
          properties: {
            requestId: { type: 'string', description: 'The mesh request id.' },
            correlationId: { type: 'string', description: 'The client’s own id (X-Correlation-Id / X-Request-Id), when it sent one.' },
            task: { type: 'string', enum: [...TASKS] },
            caption: { type: 'string', description: 'The fused caption (task caption).' },
            answer: { type: 'string', description: 'The answer (task vqa).' },
            question: { type: 'string' },
            questionType: { type: 'string', enum: ['presence', 'count', 'comparison', 'rural_urban', 'area', 'other'] },
            experts: { type: 'array', items: ref('ExpertOutput') },
            routed: { type: 'array', items: { type: 'object', properties: { expertId: { type: 'string' }, reason: { type: 'string' } } } },
            degraded: { type: 'boolean', description: 'True when a routed expert failed, timed out or was skipped.' },
            missingExperts: { type: 'array', items: { type: 'string' } },
            timings: {
              type: 'object',
              properties: { queueMs: ms('Longest queue wait.'), computeMs: ms('Longest expert compute.'), totalMs: ms('Router receipt to result stored.') },
            },
            packName: { type: 'string' },
            packVersion: { type: 'string' },
            fusionStrategy: { type: 'string' },
          },
        },
        TaskAnswer: {
          allOf: [
            ref('InferenceResult'),
            {
              type: 'object',
              properties: {
                label: { type: 'string', description: 'classify: the scene class (the most likely of labelScores).' },
                labelScores: {
                  type: 'array',
                  description: 'classify: each pack label’s probability as the whole answer (the expert scores every label), most likely first.',
                  items: { type: 'object', properties: { label: { type: 'string' }, value: { type: 'number', minimum: 0, maximum: 1 } } },
                },
                query: { type: 'string' },
                boxes: { type: 'array', items: ref('BoxAnswer'), description: 'grounding: the boxes found.' },
                box: ref('BoxAnswer'),
                mask: {
                  type: 'object',
                  properties: {
                    width: { type: 'integer' },
                    height: { type: 'integer' },
                    png: { type: 'string', description: 'Base64 single-channel 8-bit PNG: pixel = index into classes, 255 = ignore.' },
                    classes: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          index: { type: 'integer' },
                          name: { type: 'string' },
                          areaFraction: { type: 'number' },
                          rle: {
                            type: 'object',
                            description: 'COCO compressed RLE (pycocotools column-major: `pycocotools.mask.decode`).',
                            properties: { size: { type: 'array', items: { type: 'integer' }, description: '[height, width]' }, counts: { type: 'string' } },
                          },
                        },
                      },
                    },
                  },
                },
                changedFraction: { type: 'number', description: 'changes: the changed pixels ÷ all pixels.' },
                geojson: {
                  type: 'object',
                  description: 'grounding and segmentation of a georeferenced GeoTIFF: the boxes (Polygon, properties.phrase) or mask classes (MultiPolygon, properties.class and index) as an RFC 7946 FeatureCollection in EPSG:4326, [longitude, latitude].',
                },
                nativeCrs: {
                  type: 'object',
                  description: 'The same geometry in the GeoTIFF’s own CRS.',
                  properties: { epsg: { type: 'integer' }, featureCollection: { type: 'object' } },
                },
                georeference: {
                  type: 'object',
                  description: 'A GeoTIFF whose georeferencing cannot be mapped (e.g. a user-defined CRS): why there is no GeoJSON.',
                  properties: { status: { type: 'string', enum: ['unsupported'] }, reason: { type: 'string' }, message: { type: 'string' } },
                },
              },
            },
          ],
        },
        BoxAnswer: {
          type: 'object',
          properties: {
            phrase: { type: 'string' },
            boxPx: { type: 'array', items: { type: 'number' }, description: '[x1, y1, x2, y2] in pixels.' },
            boxNorm: { type: 'array', items: { type: 'number' }, description: '[x1, y1, x2, y2] in [0, 1].' },
          },
        },
        PendingAnswer: {
          type: 'object',
          properties: { requestId: { type: 'string' }, status: { type: 'string', enum: ['pending'] }, location: { type: 'string' } },
        },
        ExpertList: {
          type: 'object',
          required: ['packName', 'packVersion', 'experts'],
          properties: {
            packName: { type: 'string' },
            packVersion: { type: 'string' },
            experts: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  description: { type: 'string' },
                  aspects: { type: 'array', items: { type: 'string' } },
                  questionTypes: { type: 'array', items: { type: 'string' } },
                  model: { type: 'string' },
                  queue: { type: 'string' },
                  tasks: { type: 'array', items: { type: 'string', enum: [...EXPERT_TASKS] } },
                  granularity: { type: 'string', enum: ['image', 'region', 'pixel'], description: 'RSUniVLM’s granularity; absent for an RS-MoE expert.' },
                  liveWorkers: { type: 'integer', description: 'Workers on the queue at the router’s last poll; absent while unknown; 0: down.' },
                  waitingJobs: { type: 'integer', description: 'Interactive jobs waiting at the router’s last poll; absent while unknown.' },
                },
              },
            },
          },
        },
        ReadinessChecks: {
          type: 'object',
          properties: {
            redis: { type: 'object', properties: { ok: { type: 'boolean' }, detail: { type: 'string' } } },
            router: { type: 'object', properties: { ok: { type: 'boolean' }, detail: { type: 'string' } } },
            experts: {
              type: 'object',
              properties: {
                ok: { type: 'boolean' },
                detail: { type: 'string' },
                down: { type: 'array', items: { type: 'string' } },
                unservedTasks: { type: 'array', items: { type: 'string' } },
              },
            },
          },
        },
      },
    },
  };
  return withApiKeys(openApi, config);
}

const rateLimitHeaders = {
  'RateLimit-Limit': { description: 'Size of the key’s token bucket (its burst); on quota_exceeded, its daily quota.', schema: { type: 'integer' } },
  'RateLimit-Remaining': { description: 'Requests left in the bucket now; on quota_exceeded, 0.', schema: { type: 'integer', minimum: 0 } },
  'RateLimit-Reset': { description: 'Seconds until the bucket is full again; on quota_exceeded, until 00:00 UTC.', schema: { type: 'integer', minimum: 0 } },
};

/**
 * The API keys: both ways of sending one as security schemes, and on every `/v1` operation the answers of
 * the key check (made before the body is read) and the `RateLimit-*` headers. With AUTH_MODE=off the
 * document says no key is needed.
 */
function withApiKeys(openApi: OpenAPIObject, config: GatewayConfig): OpenAPIObject {
  if (config.AUTH_MODE === 'off') return openApi;
  openApi.components = {
    ...openApi.components,
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: '`Authorization: Bearer <key>`, a key made by `rsmoe keys create` (`rsk_…`).' },
      apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The same key in its own header.' },
    },
  };
  for (const [path, item] of Object.entries(openApi.paths)) {
    if (!path.startsWith('/v1/')) continue;
    for (const operation of [item.get, item.post]) {
      if (!operation) continue;
      const inference = item.post === operation;
      operation.security = [{ bearer: [] }, { apiKey: [] }];
      for (const [status, response] of Object.entries(operation.responses)) {
        if (status.startsWith('2') && response && !('$ref' in response)) response.headers = { ...response.headers, ...rateLimitHeaders };
      }
      operation.responses = {
        ...operation.responses,
        401: { ...errorResponse('unauthenticated: no API key, or an unknown or revoked one (answered before the body is read).'), headers: { 'WWW-Authenticate': { schema: { type: 'string', enum: ['Bearer'] } } } },
        ...(inference ? { 403: errorResponse('forbidden: the key may not run this task (answered before the body is read).') } : {}),
        429: {
          ...errorResponse(
            (inference ? 'overloaded (the mesh lacks capacity), ' : '') +
              'rate_limited (the key’s token bucket is empty; `Retry-After`: until one request may go)' +
              (inference ? ', quota_exceeded (the key’s daily quota of images, one per request, is used; `Retry-After`: until 00:00 UTC)' : '') +
              '. Key refusals come before the body is read.',
          ),
          headers: { 'Retry-After': { description: 'Seconds to wait (at least 1).', schema: { type: 'integer', minimum: 1 } }, ...rateLimitHeaders },
        },
      };
    }
  }
  const getRequest = openApi.paths['/v1/requests/{id}']?.get;
  if (getRequest) {
    getRequest.description =
      'Only the unguessable mesh id (the `X-Request-Id` response header of the request that made it) finds a result, and only with the API key that made the request: any other key gets the same 404 as an unknown id.';
  }
  return openApi;
}
