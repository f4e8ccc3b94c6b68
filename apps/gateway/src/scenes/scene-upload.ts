import { createWriteStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { SCENE_FIELD_NAMES, type SceneFields } from '@rsmoe/scenes';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import type { HttpRequest } from '../http/http-types';

/** Multipart file fields that carry the scene. */
const FILE_FIELDS = ['scene', 'image'];
/** Largest text field of a scene request, bytes. */
const MAX_FIELD_BYTES = 16 * 1024;

/** An upload streamed to disk: its fields, its size, the name the client gave it. */
export interface ReceivedScene {
  fields: SceneFields;
  bytes: number;
  fileName: string;
}

function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError(413, ERROR_CODES.sceneTooLarge, `the scene is larger than the limit of ${maxBytes} bytes (MAX_SCENE_BYTES)`);
}

/** Counts bytes through; fails past `maxBytes` so the file never grows beyond the limit. */
class ByteLimit extends Transform {
  bytes = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) callback(tooLarge(this.maxBytes));
    else callback(null, chunk);
  }
}

function fieldsFromQuery(url: string | undefined): SceneFields {
  const query = new URL(url ?? '/', 'http://gateway').searchParams;
  const fields: SceneFields = {};
  for (const [name, value] of query) {
    if (!(SCENE_FIELD_NAMES as readonly string[]).includes(name)) throw new GatewayError(400, ERROR_CODES.unknownField, `unknown field ${JSON.stringify(name)}; a scene takes ${SCENE_FIELD_NAMES.join(', ')}`);
    fields[name as keyof SceneFields] = value;
  }
  return fields;
}

/**
 * Streams a scene upload to `path`, never holding it in memory: a multipart body (file field `scene` or
 * `image`, the text fields beside it) through busboy, or a raw body (`Content-Type: image/tiff` or
 * `application/octet-stream`, fields as query parameters). Past `maxBytes` the upload stops with 413
 * `scene_too_large` (the file is left to the caller to remove). Throws GatewayError for a malformed body.
 */
export async function receiveScene(req: HttpRequest, path: string, maxBytes: number): Promise<ReceivedScene> {
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (/^(image\/tiff|image\/geo\+tiff|application\/octet-stream)\b/.test(type)) {
    const fields = fieldsFromQuery(req.url);
    const limit = new ByteLimit(maxBytes);
    const file = createWriteStream(path);
    await new Promise<void>((resolve, reject) => {
      const fail = (error: unknown): void => {
        // Not pipeline(): it would destroy the request, and with it the socket the answer goes out on.
        req.unpipe(limit);
        req.resume();
        file.destroy();
        reject(error);
      };
      limit.once('error', fail);
      file.once('error', fail);
      file.once('finish', () => resolve());
      req.once('aborted', () => fail(new GatewayError(400, ERROR_CODES.badRequest, 'the client went away during the upload')));
      req.pipe(limit).pipe(file);
    });
    return { fields, bytes: limit.bytes, fileName: 'scene.tif' };
  }
  if (!type.startsWith('multipart/form-data')) {
    throw new GatewayError(415, ERROR_CODES.unsupportedMediaType, 'send the scene as multipart/form-data (file field `scene`) or as a raw image/tiff body with the fields as query parameters');
  }
  return new Promise<ReceivedScene>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1, fields: 16, fieldSize: MAX_FIELD_BYTES, fileSize: maxBytes + 1 } });
    } catch (error) {
      reject(new GatewayError(400, ERROR_CODES.invalidMultipart, `malformed multipart body: ${(error as Error).message}`));
      return;
    }
    const fields: SceneFields = {};
    let written: Promise<{ bytes: number; fileName: string }> | undefined;
    let failure: unknown;
    const fail = (error: unknown): void => {
      if (failure !== undefined) return;
      failure = error;
      req.unpipe(parser);
      // The rest of the body is read off and dropped, so the client reads the answer instead of a reset.
      req.resume();
      reject(error);
    };
    parser.on('field', (name, value, info) => {
      if (!(SCENE_FIELD_NAMES as readonly string[]).includes(name)) fail(new GatewayError(400, ERROR_CODES.unknownField, `unknown field ${JSON.stringify(name)}; a scene takes ${SCENE_FIELD_NAMES.join(', ')}`));
      else if (info.valueTruncated) fail(new GatewayError(400, ERROR_CODES.invalidField, `${name}: longer than ${MAX_FIELD_BYTES} bytes`));
      else fields[name as keyof SceneFields] = value;
    });
    parser.on('file', (name, stream, info) => {
      if (!FILE_FIELDS.includes(name) || written !== undefined) {
        stream.resume();
        fail(new GatewayError(400, ERROR_CODES.invalidMultipart, `unexpected file field ${JSON.stringify(name)}: send one scene as \`scene\``));
        return;
      }
      const limit = new ByteLimit(maxBytes);
      written = pipeline(stream, limit, createWriteStream(path)).then(() => ({ bytes: limit.bytes, fileName: info.filename || 'scene.tif' }));
      written.catch((error: unknown) => {
        stream.resume();
        fail(error);
      });
    });
    parser.on('filesLimit', () => fail(new GatewayError(400, ERROR_CODES.invalidMultipart, 'one scene file per request')));
    parser.on('error', (error: Error) => fail(new GatewayError(400, ERROR_CODES.invalidMultipart, `malformed multipart body: ${error.message}`)));
    parser.on('close', () => {
      if (failure !== undefined) return;
      if (written === undefined) {
        reject(new GatewayError(400, ERROR_CODES.missingField, 'scene: the multipart body has no file field `scene`'));
        return;
      }
      written.then(({ bytes, fileName }) => resolve({ fields, bytes, fileName }), reject);
    });
    req.on('aborted', () => fail(new GatewayError(400, ERROR_CODES.badRequest, 'the client went away during the upload')));
    req.pipe(parser);
  });
}
