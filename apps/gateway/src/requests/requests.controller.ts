import { Controller, Get, Inject, Param } from '@nestjs/common';
import { isRequestId, type InferenceResultJson } from '@rsmoe/contracts';
import type { ResultReader } from '../adapters/result-reader.adapter';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import { RESULT_READER } from '../tokens';

/** What the gateway makes as a request id (generateRequestId): 128 random bits in hex. */
const MESH_REQUEST_ID = /^[0-9a-f]{32}$/;

/**
 * `GET /v1/requests/{id}`: a stored result, while its TTL lasts. Only by the mesh's request id, which the
 * gateway makes from 128 random bits and gives to nobody but the request's client (`X-Request-Id` of its
 * response): a client's own id (correlation id) never finds a result, and a result cannot be found by
 * guessing. Once API keys exist, a read will also have to come with the key that made the request.
 */
@Controller('v1/requests')
export class RequestsController {
  constructor(@Inject(RESULT_READER) private readonly results: ResultReader) {}

  @Get(':id')
  async get(@Param('id') id: string): Promise<InferenceResultJson> {
    if (!isRequestId(id)) throw new GatewayError(400, ERROR_CODES.invalidRequestId, 'a request id is 1-128 characters of [A-Za-z0-9_-]');
    const result = MESH_REQUEST_ID.test(id) ? await this.results.get(id) : undefined;
    if (!result) throw new GatewayError(404, ERROR_CODES.requestNotFound, `no stored result for request ${id} (unknown, not finished, or expired)`);
    return result;
  }
}
