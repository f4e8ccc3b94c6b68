import { Controller, Get, Inject, Param } from '@nestjs/common';
import { isRequestId, type InferenceResultJson } from '@rsmoe/contracts';
import type { ResultReader } from '../adapters/result-reader.adapter';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import { RESULT_READER } from '../tokens';

/** `GET /v1/requests/{id}`: a stored result, while its TTL lasts. */
@Controller('v1/requests')
export class RequestsController {
  constructor(@Inject(RESULT_READER) private readonly results: ResultReader) {}

  @Get(':id')
  async get(@Param('id') id: string): Promise<InferenceResultJson> {
    if (!isRequestId(id)) throw new GatewayError(400, ERROR_CODES.invalidRequestId, 'a request id is 1-128 characters of [A-Za-z0-9_-]');
    const result = await this.results.get(id);
    if (!result) throw new GatewayError(404, ERROR_CODES.requestNotFound, `no stored result for request ${id} (unknown, not finished, or expired)`);
    return result;
  }
}
