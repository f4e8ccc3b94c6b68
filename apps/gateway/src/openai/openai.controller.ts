import { Controller, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { apiKeyOf } from '../http/api-key.middleware';
import type { HttpRequest, HttpResponse } from '../http/http-types';
import { requestContext } from '../http/request-context.middleware';
import { TIMEOUT_HEADER, contextOf } from '../inference/inference.controller';
import type { IdempotentReplay } from '../inference/inference.service';
import { errorBodyOf, gatewayErrorOf } from '../errors/error-response.filter';
import { EVENT_STREAM_HEADERS, openEventStream, sseFrame } from '../streaming/event-stream';
import { answerChunks, chatCompletion, partialChunk, roleChunk, type MeshAnswer } from './chat-completion';
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
   * The answer as `chat.completion`, or with `stream: true` as server-sent `chat.completion.chunk` events: the
   * role, then one chunk per expert as it finishes (an empty delta, the partial in `rsmoe`), then the answer's
   * text, the finish reason with the usage and the mesh's answer, and `data: [DONE]`. A failure before the
   * first chunk is a plain JSON error with its status; after it, a `data: {"error": …}` event ends the stream
   * (OpenAI's clients throw it). A client that goes away cancels the request.
   */
  @Post('chat/completions')
  @HttpCode(200)
  async complete(@Req() req: HttpRequest, @Res() res: HttpResponse): Promise<void> {
    const chat = readChatRequest(req.body);
    const header = req.headers[TIMEOUT_HEADER];
    const timeoutHeader = typeof header === 'string' ? header : undefined;
    const context = contextOf(req, res);
    const created = unixSeconds(context.receivedAtMs);
    if (!chat.stream) {
      const answer = await this.openai.complete(chat, apiKeyOf(req), timeoutHeader, context);
      if (isReplay(answer)) {
        res.setHeader('Idempotent-Replayed', 'true');
        if (answer.status !== 200) {
          res.status(answer.status).json(answer.body);
          return;
        }
      }
      res.status(200).json(chatCompletion(isReplay(answer) ? (answer.body as MeshAnswer) : answer, chat.model, created));
      return;
    }
    let refusal: IdempotentReplay | undefined;
    const events = await openEventStream(
      async (sink) => {
        let started = false;
        const start = (requestId: string): void => {
          if (started) return;
          started = true;
          sink.send(sseFrame(roleChunk(requestId, chat.model, created)));
        };
        const answer = await this.openai.complete(chat, apiKeyOf(req), timeoutHeader, context, (output) => {
          start(context.requestId);
          sink.send(sseFrame(partialChunk(context.requestId, chat.model, created, output)));
        });
        if (isReplay(answer)) {
          res.setHeader('Idempotent-Replayed', 'true');
          if (answer.status !== 200) {
            refusal = answer;
            return;
          }
        }
        const mesh = isReplay(answer) ? (answer.body as MeshAnswer) : answer;
        start(mesh.requestId);
        for (const chunk of answerChunks(mesh, chat.model, created)) sink.send(sseFrame(chunk));
        sink.send(sseFrame('[DONE]'));
      },
      (error) => sseFrame(errorBodyOf(gatewayErrorOf(error), context.requestId)),
    );
    if (refusal) {
      events.destroy();
      res.status(refusal.status).json(refusal.body);
      return;
    }
    res.status(200);
    for (const [name, value] of Object.entries(EVENT_STREAM_HEADERS)) res.setHeader(name, value);
    res.once('close', () => events.destroy());
    events.pipe(res);
  }
}
