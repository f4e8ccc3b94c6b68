import { DocumentBuilder, type OpenAPIObject, type ParameterObject, type ReferenceObject, type SchemaObject } from '@nestjs/swagger';
import type { GatewayConfig } from '../gateway.config';

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
  const headers: ParameterObject[] = [
    { name: 'X-Request-Id', in: 'header', required: false, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' }, description: 'Request id; generated when absent, always echoed.' },
  ];
  const inferenceHeaders: ParameterObject[] = [
    ...headers,
    { name: 'X-Request-Timeout-Ms', in: 'header', required: false, schema: timeoutMs, description: 'Deadline in ms; the smaller of this and `timeoutMs` wins.' },
  ];
  const inferenceResponses = {
    200: { description: 'The fused result.', content: json(ref('InferenceResult')) },
    400: errorResponse('missing_image, invalid_base64, missing_question, invalid_question, invalid_params, invalid_timeout, unknown_field, invalid_json, invalid_multipart, invalid_request_id, invalid_argument'),
    408: errorResponse('deadline_exceeded'),
    413: errorResponse('payload_too_large'),
    415: errorResponse('unsupported_media_type (the message names the format found)'),
    422: errorResponse('too_many_pixels, invalid_image, question_too_long'),
    429: errorResponse('overloaded'),
    502: errorResponse('router_error'),
    503: errorResponse('router_unavailable, storage_unavailable'),
  };

  const document = new DocumentBuilder()
    .setTitle('RS-MoE Mesh gateway')
    .setDescription('Captions and visual question answering for remote-sensing images, served by a mixture of expert VLMs.')
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
      '/v1/requests/{id}': {
        get: {
          operationId: 'getRequest',
          summary: 'A stored result (kept for the result TTL)',
          parameters: [...headers, { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' } }],
          responses: {
            200: { description: 'The stored result.', content: json(ref('InferenceResult')) },
            400: errorResponse('invalid_request_id'),
            404: errorResponse('request_not_found'),
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
          summary: 'Readiness: Redis answers PING and the router reports SERVING (pack loaded)',
          responses: {
            200: {
              description: 'Ready.',
              content: json({ type: 'object', properties: { status: { type: 'string', enum: ['ready'] }, checks: ref('ReadinessChecks') } }),
            },
            503: errorResponse('not_ready; `error.details.checks` says which check failed'),
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
                requestId: { type: 'string' },
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
            maxNewTokens: { type: 'integer', minimum: 1 },
            numBeams: { type: 'integer', minimum: 1 },
            doSample: { type: 'boolean' },
            temperature: { type: 'number', minimum: 0, exclusiveMinimum: true },
            topK: { type: 'integer', minimum: 0 },
            topP: { type: 'number', minimum: 0, exclusiveMinimum: true, maximum: 1 },
            seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
            repetitionPenalty: { type: 'number', minimum: 0, exclusiveMinimum: true },
            lengthPenalty: { type: 'number' },
            stopStrings: { type: 'array', items: { type: 'string', minLength: 1 } },
          },
        },
        ExpertOutput: {
          type: 'object',
          required: ['expertId', 'prompt', 'text', 'status', 'promptTokens', 'generatedTokens', 'timings', 'model', 'featuresCached'],
          properties: {
            expertId: { type: 'string' },
            prompt: { type: 'string' },
            text: { type: 'string' },
            status: { type: 'string', enum: ['ok', 'failed', 'timed_out', 'skipped'] },
            error: { type: 'string' },
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
            requestId: { type: 'string' },
            task: { type: 'string', enum: ['caption', 'vqa'] },
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
          },
        },
      },
    },
  };
  return openApi;
}
