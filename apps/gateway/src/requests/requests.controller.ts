import { Controller, Delete, Get, HttpCode, Inject, Param, Req, Res } from '@nestjs/common';
import { isRequestId } from '@rsmoe/contracts';
import type { AsyncAnswerStore } from '../adapters/async-answer-store.adapter';
import type { RequestEraser } from '../adapters/request-eraser.adapter';
import type { RequestOwnerStore } from '../adapters/request-owner-store.adapter';
import type { ResultReader } from '../adapters/result-reader.adapter';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import type { GatewayConfig } from '../gateway.config';
import { apiKeyOf } from '../http/api-key.middleware';
import type { HttpRequest, HttpResponse } from '../http/http-types';
import { ASYNC_ANSWERS, GATEWAY_CONFIG, REQUEST_ERASER, REQUEST_OWNERS, RESULT_READER } from '../tokens';

/** What the gateway makes as a request id (generateRequestId): 128 random bits in hex. */
const MESH_REQUEST_ID = /^[0-9a-f]{32}$/;

/**
 * `GET /v1/requests/{id}`: the answer of a request submitted with `Prefer: respond-async` (202 while it runs,
 * then the status and body it ended with), else the router's stored result, while their TTLs last. Only by the mesh's request id, which the
 * gateway makes from 128 random bits and gives to nobody but the request's client (`X-Request-Id` of its
 * response): a client's own id (correlation id) never finds a result, and a result cannot be found by
 * guessing. With AUTH_MODE=required only the API key that made the request reads it: any other key gets the
 * same 404 as an unknown id, so whether the id exists is never revealed.
 */
@Controller('v1/requests')
export class RequestsController {
  constructor(
    @Inject(RESULT_READER) private readonly results: ResultReader,
    @Inject(ASYNC_ANSWERS) private readonly answers: AsyncAnswerStore,
    @Inject(REQUEST_OWNERS) private readonly owners: RequestOwnerStore,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REQUEST_ERASER) private readonly eraser: RequestEraser,
  ) {}

  @Get(':id')
  async get(@Param('id') id: string, @Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Promise<unknown> {
    await this.checkAccess(id, req);
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

  /**
   * `DELETE /v1/requests/{id}`: erases the request's result and async answer, the images it stored and their
   * cached image features, before their TTLs end (204). Only the key that made it (with API keys on); a
   * request still running is 409 `request_pending` (its result would be stored after the erasure).
   */
  @Delete(':id')
  @HttpCode(204)
  async erase(@Param('id') id: string, @Req() req: HttpRequest): Promise<void> {
    await this.checkAccess(id, req);
    const answer = await this.answers.get(id);
    if (answer?.state === 'pending') {
      throw new GatewayError(409, ERROR_CODES.requestPending, `request ${id} is still running: delete it once GET /v1/requests/${id} is no longer 202`);
    }
    const erased = await this.eraser.erase(id);
    if (erased.deletedKeys === 0) throw notFound(id);
  }

  /** 400 for a malformed id; 404 for an id that is not the mesh's, or (with API keys on) not the caller's. */
  private async checkAccess(id: string, req: HttpRequest): Promise<void> {
    if (!isRequestId(id)) throw new GatewayError(400, ERROR_CODES.invalidRequestId, 'a request id is 1-128 characters of [A-Za-z0-9_-]');
    if (!MESH_REQUEST_ID.test(id)) throw notFound(id);
    if (this.config.AUTH_MODE === 'required') {
      const caller = apiKeyOf(req)?.id;
      if (caller === undefined || (await this.owners.ownerOf(id)) !== caller) throw notFound(id);
    }
  }
}

function notFound(id: string): GatewayError {
  return new GatewayError(404, ERROR_CODES.requestNotFound, `no stored result for request ${id} (unknown, not finished, or expired)`);
}
