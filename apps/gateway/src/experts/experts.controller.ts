import { Controller, Get, Inject, Req } from '@nestjs/common';
import type { ExpertListJson, RouterPort } from '../adapters/router.port';
import type { GatewayConfig } from '../gateway.config';
import type { HttpRequest } from '../http/http-types';
import { requestContext } from '../http/request-context.middleware';
import { GATEWAY_CONFIG, ROUTER } from '../tokens';

/** `GET /v1/experts`: the experts of the pack the router has loaded. */
@Controller('v1/experts')
export class ExpertsController {
  constructor(
    @Inject(ROUTER) private readonly router: RouterPort,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Get()
  list(@Req() req: HttpRequest): Promise<ExpertListJson> {
    const { requestId, traceparent, receivedAtMs } = requestContext(req);
    return this.router.listExperts({ requestId, traceparent, deadlineUnixMs: receivedAtMs + this.config.REQUEST_TIMEOUT_MS });
  }
}
