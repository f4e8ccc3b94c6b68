import { Controller, Get, Inject, Param, Res } from '@nestjs/common';
import { isRequestId } from '@rsmoe/contracts';
import type { AsyncAnswerStore } from '../adapters/async-answer-store.adapter';
import type { ResultReader } from '../adapters/result-reader.adapter';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import type { HttpResponse } from '../http/http-types';
import { ASYNC_ANSWERS, RESULT_READER } from '../tokens';

/** What the gateway makes as a request id (generateRequestId): 128 random bits in hex. */
const MESH_REQUEST_ID = /^[0-9a-f]{32}$/;

/**
 * `GET /v1/requests/{id}`: the answer of a request submitted with `Prefer: respond-async` (202 while it runs,
 * then the status and body it ended with), else the router's stored result, while their TTLs last. Only by the mesh's request id, which the
 * gateway makes from 128 random bits and gives to nobody but the request's client (`X-Request-Id` of its
 * response): a client's own id (correlation id) never finds a result, and a result cannot be found by
 * guessing. Once API keys exist, a read will also have to come with the key that made the request.
 */
@Controller('v1/requests')
export class RequestsController {
  constructor(
    @Inject(RESULT_READER) private readonly results: ResultReader,
    @Inject(ASYNC_ANSWERS) private readonly answers: AsyncAnswerStore,
  ) {}

  @Get(':id')
  async get(@Param('id') id: string, @Res({ passthrough: true }) res: HttpResponse): Promise<unknown> {
    if (!isRequestId(id)) throw new GatewayError(400, ERROR_CODES.invalidRequestId, 'a request id is 1-128 characters of [A-Za-z0-9_-]');
    if (!MESH_REQUEST_ID.test(id)) throw notFound(id);
    const answer = await this.answers.get(id);
    if (answer?.state === 'pending') {
      res.status(202);
      res.setHeader('Retry-After', '1');
      return { requestId: id, status: 'pending', submittedAtUnixMs: answer.submittedAtUnixMs };
    }
    if (answer?.state === 'done') {
      res.status(answer.status);
      return answer.body;
    }
    const result = await this.results.get(id);
    if (!result) throw notFound(id);
    return result;
  }
}

function notFound(id: string): GatewayError {
  return new GatewayError(404, ERROR_CODES.requestNotFound, `no stored result for request ${id} (unknown, not finished, or expired)`);
}
