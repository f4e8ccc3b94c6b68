import { PassThrough, type Readable } from 'node:stream';
import type { ExpertOutputJson } from '@rsmoe/contracts';

/** Where a streamed request writes its server-sent events (each already framed, `data: …\n\n`). */
export interface EventSink {
  send(frame: string): void;
}

/** One server-sent event: its optional `event:` name and its data as one JSON line. */
export function sseFrame(data: unknown, event?: string): string {
  return `${event !== undefined ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

/**
 * An expert's partial as every stream carries it: `{expert, partial}` (the task endpoints' `partial` event,
 * the chat completion chunk's `rsmoe` field).
 */
export interface ExpertPartialEvent {
  /** The expert's id. */
  expert: string;
  /** Its output as the result lists it (text, status, tokens, timings). */
  partial: ExpertOutputJson;
}

export const partialEvent = (output: ExpertOutputJson): ExpertPartialEvent => ({ expert: output.expertId, partial: output });

/** Headers of every event stream the gateway answers. */
export const EVENT_STREAM_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  // Proxies that buffer (nginx) would hold the partials back until the end.
  'X-Accel-Buffering': 'no',
};

/**
 * Runs a streamed request and answers its events as a stream that opens with the first event: until then a
 * failure rejects, so the caller still answers it as a plain JSON error with its status; after that, the
 * failure becomes the stream's last frame (`lateError`). Nothing is written once the stream is destroyed
 * (the client went away: the request's own signal cancels its work).
 */
export function openEventStream(run: (sink: EventSink) => Promise<void>, lateError: (error: unknown) => string): Promise<Readable> {
  const out = new PassThrough();
  // A write racing the client's disconnect must not become an unhandled 'error'.
  out.on('error', () => undefined);
  return new Promise<Readable>((resolve, reject) => {
    let opened = false;
    const open = (): void => {
      if (opened) return;
      opened = true;
      resolve(out);
    };
    const sink: EventSink = {
      send(frame) {
        if (out.destroyed || out.writableEnded) return;
        out.write(frame);
        open();
      },
    };
    run(sink).then(
      () => {
        open();
        if (!out.destroyed && !out.writableEnded) out.end();
      },
      (error: unknown) => {
        if (!opened) {
          out.destroy();
          reject(error);
        } else if (!out.destroyed && !out.writableEnded) out.end(lateError(error));
      },
    );
  });
}
