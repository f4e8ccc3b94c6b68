import { Controller, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { apiKeyOf } from '../http/api-key.middleware';
import type { HttpRequest, HttpResponse } from '../http/http-types';
import { requestContext } from '../http/request-context.middleware';
import { TIMEOUT_HEADER, contextOf } from '../inference/inference.controller';
import type { IdempotentReplay } from '../inference/inference.service';
import { chatCompletion, chatCompletionChunks, type MeshAnswer } from './chat-completion';
import { readChatRequest } from './chat-request';
import { OpenAiService } from './openai.service';

/** `GET /v1/models`: the one model, the loaded pack. */
export interface ModelList {
  object: 'list';
  data: Array<{ id: string; object: 'model'; created: number; owned_by: 'rsmoe-mesh' }>;
}

const unixSeconds = (ms: number): number => Math.floor(ms / 1000);

function isReplay(answer: MeshAnswer | IdempotentReplay): answer is IdempotentReplay {
  return (answer as IdempotentReplay).kind === 'replay';
}

/**
 * OpenAI-compatible endpoints, so that OpenAI clients can call the mesh: `POST /v1/chat/completions` (the
 * task from the message's RSUniVLM tag, images as base64 data URLs) and `GET /v1/models`.
 */
@Controller('v1')
export class OpenAiController {
  constructor(@Inject(OpenAiService) private readonly openai: OpenAiService) {}

  @Get('models')
  async models(@Req() req: HttpRequest): Promise<ModelList> {
    const context = requestContext(req);
    const id = await this.openai.packName(context);
    return { object: 'list', data: [{ id, object: 'model', created: unixSeconds(context.receivedAtMs), owned_by: 'rsmoe-mesh' }] };
  }

  /**
   * The answer as `chat.completion`, or with `stream: true` as server-sent `chat.completion.chunk` events
   * ending in `data: [DONE]`. Streaming starts once the answer is ready, so every error is a plain JSON error
   * with its status. A client that goes away cancels the request.
   */
  @Post('chat/completions')
  @HttpCode(200)
  async complete(@Req() req: HttpRequest, @Res() res: HttpResponse): Promise<void> {
    const chat = readChatRequest(req.body);
    const header = req.headers[TIMEOUT_HEADER];
    const context = contextOf(req, res);
    const answer = await this.openai.complete(chat, apiKeyOf(req), typeof header === 'string' ? header : undefined, context);
    if (isReplay(answer)) {
      res.setHeader('Idempotent-Replayed', 'true');
      if (answer.status !== 200) {
        res.status(answer.status).json(answer.body);
        return;
      }
    }
    const mesh = isReplay(answer) ? (answer.body as MeshAnswer) : answer;
    const created = unixSeconds(context.receivedAtMs);
    if (!chat.stream) {
      res.status(200).json(chatCompletion(mesh, chat.model, created));
      return;
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    for (const chunk of chatCompletionChunks(mesh, chat.model, created)) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    res.end('data: [DONE]\n\n');
  }
}
