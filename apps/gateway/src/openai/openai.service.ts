import { Inject, Injectable } from '@nestjs/common';
import type { PartialListener, RouterPort } from '../adapters/router.port';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import type { GatewayConfig } from '../gateway.config';
import type { ApiKeyIdentity } from '../adapters/api-key-limiter.adapter';
import { InferenceService, type IdempotentReplay, type InferenceContext } from '../inference/inference.service';
import { GATEWAY_CONFIG, ROUTER } from '../tokens';
import type { MeshAnswer } from './chat-completion';
import type { ChatTaskRequest } from './chat-request';

/** How long the pack name read from the router's ListExperts is reused, in ms. */
export const PACK_NAME_TTL_MS = 10_000;

/**
 * The OpenAI-compatible face of the mesh: the one "model" is the loaded pack (its name from the router's
 * ListExperts, kept PACK_NAME_TTL_MS), and a chat request runs through InferenceService like the task's
 * own endpoint: the same intake, limits, deadline, idempotency and error codes.
 */
@Injectable()
export class OpenAiService {
  constructor(
    @Inject(ROUTER) private readonly router: RouterPort,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(InferenceService) private readonly inference: InferenceService,
  ) {}

  private cached: { name: string; expiresAtMs: number } | undefined;

  /** The loaded pack's name: the only `model` this gateway serves. */
  async packName(context: Pick<InferenceContext, 'requestId' | 'traceparent' | 'receivedAtMs'>): Promise<string> {
    const now = Date.now();
    if (this.cached !== undefined && this.cached.expiresAtMs > now) return this.cached.name;
    const { requestId, traceparent, receivedAtMs } = context;
    const { packName } = await this.router.listExperts({ requestId, ...(traceparent !== undefined ? { traceparent } : {}), deadlineUnixMs: receivedAtMs + this.config.REQUEST_TIMEOUT_MS });
    this.cached = { name: packName, expiresAtMs: now + PACK_NAME_TTL_MS };
    return packName;
  }

  /**
   * Runs a chat request: the model must be the pack (404 `model_not_found`), the API key must allow the task
   * the message asks for (403 `forbidden`: the key middleware cannot know it from the route), then the task
   * runs as its own endpoint runs it.
   */
  async complete(
    chat: ChatTaskRequest,
    key: ApiKeyIdentity | undefined,
    timeoutHeader: string | undefined,
    context: InferenceContext,
    /** With `stream: true`: told each expert's output as it finishes. */
    onPartial?: PartialListener,
  ): Promise<MeshAnswer | IdempotentReplay> {
    const packName = await this.packName(context);
    if (chat.model !== packName) throw new GatewayError(404, ERROR_CODES.modelNotFound, `model "${chat.model}" is not served here: the model is the loaded pack, "${packName}"`);
    if (key?.tasks !== undefined && !key.tasks.includes(chat.task)) throw new GatewayError(403, ERROR_CODES.forbidden, `API key "${key.name}" may not run ${chat.task} requests`);
    return this.inference.run(chat.task, { encoding: 'json', body: chat.body, ...(timeoutHeader !== undefined ? { timeoutHeader } : {}) }, context, onPartial);
  }
}
