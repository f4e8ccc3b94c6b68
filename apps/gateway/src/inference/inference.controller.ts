import { Controller, HttpCode, Inject, Post, Req, Res, UploadedFile, UseInterceptors } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import type { InferenceResultJson, Task } from '@rsmoe/contracts';
import type { HttpRequest, HttpResponse, UploadedImageFile } from '../http/http-types';
import { requestContext } from '../http/request-context.middleware';
import type { RawInferenceInput } from '../intake/image-intake.service';
import { InferenceService, type InferenceContext } from './inference.service';

/** Header a client may use instead of (or with) the `timeoutMs` field; the smaller one wins. */
export const TIMEOUT_HEADER = 'x-request-timeout-ms';

/** `POST /v1/captions` and `POST /v1/vqa`: multipart (file field `image`) or JSON (base64 / data URL). */
@Controller('v1')
export class InferenceController {
  constructor(@Inject(InferenceService) private readonly inference: InferenceService) {}

  @Post('captions')
  @HttpCode(200)
  @UseInterceptors(FileInterceptor('image'))
  caption(
    @Req() req: HttpRequest,
    @Res({ passthrough: true }) res: HttpResponse,
    @UploadedFile() file: UploadedImageFile | undefined,
  ): Promise<InferenceResultJson> {
    return this.handle('caption', req, res, file);
  }

  @Post('vqa')
  @HttpCode(200)
  @UseInterceptors(FileInterceptor('image'))
  answer(
    @Req() req: HttpRequest,
    @Res({ passthrough: true }) res: HttpResponse,
    @UploadedFile() file: UploadedImageFile | undefined,
  ): Promise<InferenceResultJson> {
    return this.handle('vqa', req, res, file);
  }

  private handle(task: Task, req: HttpRequest, res: HttpResponse, file: UploadedImageFile | undefined): Promise<InferenceResultJson> {
    const multipart = /^multipart\//i.test(String(req.headers['content-type'] ?? ''));
    const header = req.headers[TIMEOUT_HEADER];
    const input: RawInferenceInput = {
      encoding: multipart ? 'multipart' : 'json',
      ...(file ? { file: file.buffer } : {}),
      body: req.body,
      ...(typeof header === 'string' ? { timeoutHeader: header } : {}),
    };
    return this.inference.run(task, input, contextOf(req, res));
  }
}

function contextOf(req: HttpRequest, res: HttpResponse): InferenceContext {
  const { requestId, correlationId, traceparent, receivedAtMs } = requestContext(req);
  const abort = new AbortController();
  // The client went away before the answer: cancel the router call instead of computing for nobody.
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  return { requestId, ...(correlationId !== undefined ? { correlationId } : {}), traceparent, receivedAtMs, signal: abort.signal };
}
