import {
  DEFAULT_GENERATION_PARAM_LIMITS,
  formatIssues,
  generationParamsSchemaWithin,
  CHANGE_OUTPUTS,
  isLongTask,
  type ChangeOutput,
  type GenerationParamLimits,
  type GenerationParams,
  type PercentBoxJson,
  type Task,
} from '@rsmoe/contracts';
// The image-only entry: format sniffing without loading onnxruntime into the gateway.
import { imageFormatLabel, sniffImageFormat, sniffUnsupportedImageFormat } from '@rsmoe/runtime/image';
import sharp from 'sharp';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';

/** Limits applied to every inference request before anything is stored or sent. */
export interface IntakeLimits {
  /** Largest accepted encoded image, in bytes. */
  maxImageBytes: number;
  /** Largest accepted width × height, read from the image header only. */
  maxImagePixels: number;
  /** Longest accepted question, in characters (code points, after trimming). */
  maxQuestionChars: number;
  /** Deadline when the client asks for none, in ms. */
  defaultTimeoutMs: number;
  /** Longest deadline a client may ask for, in ms. */
  maxTimeoutMs: number;
  /** The same two for LONG_TASKS (segmentation, change), whose masks are long text; default: the above. */
  longTask?: { defaultTimeoutMs: number; maxTimeoutMs: number };
  /** Bounds of `params` (the experts' schema, libs/contracts generationParamsSchemaWithin). Default: the experts' own. */
  generation?: GenerationParamLimits;
}

/** What an inference endpoint received, before validation. */
export interface RawInferenceInput {
  /** `json`: a JSON body; `multipart`: form fields (all strings) plus an optional `image` file part. */
  encoding: 'json' | 'multipart';
  /** Bytes of the multipart `image` file part, when one was sent. */
  file?: Uint8Array;
  /** Bytes of the multipart `before` and `after` file parts of a change request, when sent. */
  files?: Partial<Record<'before' | 'after', Uint8Array>>;
  /** The parsed JSON body, or the multipart text fields. */
  body: unknown;
  /** Value of the `X-Request-Timeout-Ms` header, when sent. */
  timeoutHeader?: string;
}

export type AcceptedImageFormat = 'png' | 'jpeg' | 'webp' | 'tiff';

/** An image that passed every check: format from its bytes, size, pixel count from its header. */
export interface AcceptedImage {
  bytes: Buffer;
  format: AcceptedImageFormat;
  /** Media type of the sniffed format, e.g. `image/png`. */
  mediaType: string;
  width: number;
  height: number;
}

/** A referring request's region: as sent, and in percent of the image (what the router takes). */
export interface AcceptedBox {
  /** [x1, y1, x2, y2] in pixels, continuous coordinates. */
  px: [number, number, number, number];
  percent: PercentBoxJson;
}

/** A request that passed validation: safe to store and send on. */
export interface AcceptedInferenceRequest {
  task: Task;
  /** The (first) image. */
  image: AcceptedImage;
  /** Every image, in prompt order (a change request: before, after). */
  images: AcceptedImage[];
  /** Grounding and segmentation: the phrase. */
  query?: string;
  /** Referring: the region. */
  box?: AcceptedBox;
  /** Segmentation: the class names asked for. */
  classes?: string[];
  /** Change: which outputs. */
  changeOutput?: ChangeOutput;
  /** The trimmed question (task `vqa` only). */
  question?: string;
  params: GenerationParams;
  /** The request's deadline budget, in ms from its arrival. */
  timeoutMs: number;
}

const MEDIA_TYPES: Record<AcceptedImageFormat, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  tiff: 'image/tiff',
};

const FIELDS: Record<Task, ReadonlySet<string>> = {
  caption: new Set(['image', 'params', 'timeoutMs']),
  vqa: new Set(['image', 'question', 'params', 'timeoutMs']),
  classification: new Set(['image', 'params', 'timeoutMs']),
  grounding: new Set(['image', 'query', 'params', 'timeoutMs']),
  referring: new Set(['image', 'box', 'units', 'params', 'timeoutMs']),
  segmentation: new Set(['image', 'classes', 'query', 'params', 'timeoutMs']),
  change: new Set(['before', 'after', 'output', 'params', 'timeoutMs']),
};

/** Most classes one segmentation request may name. */
export const MAX_SEGMENTATION_CLASSES = 64;
/** A class name: no `*`, comma or line break (they delimit RSUniVLM's mask text), at most 64 characters. */
const CLASS_NAME = /^[^*,\r\n]{1,64}$/;

const DATA_URL = /^data:([^,]*),/i;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const DECIMAL = /^\d{1,16}$/;

function badRequest(code: (typeof ERROR_CODES)[keyof typeof ERROR_CODES], message: string): GatewayError {
  return new GatewayError(400, code, message);
}

/**
 * Validation of caption and question requests: plain TypeScript, no Nest, no I/O besides reading the
 * image header. Every check runs before anything is stored or sent; the first failure throws a
 * GatewayError with its HTTP status and stable code.
 */
export class ImageIntake {
  /** The experts' GenerationParams schema under this gateway's bounds (never looser than the experts'). */
  private readonly paramsSchema: ReturnType<typeof generationParamsSchemaWithin>;

  constructor(private readonly limits: IntakeLimits) {
    this.paramsSchema = generationParamsSchemaWithin(limits.generation ?? DEFAULT_GENERATION_PARAM_LIMITS);
  }

  /** Validates a whole request for `task`; the order is: fields, images, question / task fields, params, timeout. */
  async accept(task: Task, input: RawInferenceInput): Promise<AcceptedInferenceRequest> {
    const body = this.bodyFields(task, input.body);
    const images = task === 'change' ? await this.acceptPair(input, body) : [await this.acceptImage(input.file !== undefined ? input.file : this.imageFromField(body.image))];
    const [image] = images;
    const question = task === 'vqa' ? this.acceptQuestion(body.question) : undefined;
    const fields = this.taskFields(task, body, image, input.encoding);
    const params = this.acceptParams(body.params, input.encoding);
    const timeoutMs = this.acceptTimeout(body.timeoutMs, input.timeoutHeader, input.encoding, isLongTask(task) ? this.limits.longTask : undefined);
    return { task, image, images, ...(question !== undefined ? { question } : {}), ...fields, params, timeoutMs };
  }

  /** A change request's two images, `before` then `after`, of the same size. */
  private async acceptPair(input: RawInferenceInput, body: Record<string, unknown>): Promise<AcceptedImage[]> {
    const pair: AcceptedImage[] = [];
    for (const name of ['before', 'after'] as const) {
      const file = input.files?.[name];
      if (file === undefined && (body[name] === undefined || body[name] === null || body[name] === '')) {
        throw badRequest(ERROR_CODES.missingImage, `no "${name}" image: a change request sends "before" and "after" (multipart files or base64 JSON fields)`);
      }
      pair.push(await this.acceptImage(file ?? this.imageFromField(body[name])));
    }
    const [before, after] = pair;
    if (before.width !== after.width || before.height !== after.height) {
      throw new GatewayError(
        422,
        ERROR_CODES.imageSizeMismatch,
        `the images differ in size: before is ${before.width}×${before.height}, after is ${after.width}×${after.height}; send a co-registered pair of the same size`,
      );
    }
    return pair;
  }

  /** The fields RSUniVLM's tasks add, checked against the image where they refer to it. */
  private taskFields(task: Task, body: Record<string, unknown>, image: AcceptedImage, encoding: RawInferenceInput['encoding']): Partial<AcceptedInferenceRequest> {
    switch (task) {
      case 'grounding':
        return { query: this.acceptQuery(body.query, true)! };
      case 'referring':
        return { box: this.acceptBox(body.box, body.units, image, encoding) };
      case 'segmentation': {
        const classes = this.acceptClasses(body.classes, encoding);
        const query = this.acceptQuery(body.query, false);
        if (classes.length === 0 && query === undefined) throw badRequest(ERROR_CODES.missingField, 'segmentation needs "classes" (class names) or a "query" (a phrase)');
        return { ...(classes.length > 0 ? { classes } : {}), ...(query !== undefined ? { query } : {}) };
      }
      case 'change':
        return { changeOutput: this.acceptChangeOutput(body.output) };
      default:
        return {};
    }
  }

  private acceptQuery(value: unknown, required: boolean): string | undefined {
    if (value === undefined || value === null || value === '') {
      if (required) throw badRequest(ERROR_CODES.missingField, 'a "query" (the phrase to find) is required');
      return undefined;
    }
    if (typeof value !== 'string') throw badRequest(ERROR_CODES.invalidField, 'query must be a string');
    const query = value.replace(/\s+/g, ' ').trim();
    if (query === '') {
      if (required) throw badRequest(ERROR_CODES.missingField, 'the query is empty');
      return undefined;
    }
    const length = [...query].length;
    if (length > this.limits.maxQuestionChars) {
      throw new GatewayError(422, ERROR_CODES.questionTooLong, `the query has ${length} characters; the limit is ${this.limits.maxQuestionChars}`);
    }
    return query;
  }

  /**
   * A region as [x1, y1, x2, y2] (a JSON array, or its text / "x1,y1,x2,y2" in multipart) in `units` px (the
   * default: pixels, continuous coordinates) or norm ([0, 1] of width and height); inside the image, not empty.
   */
  private acceptBox(value: unknown, unitsValue: unknown, image: AcceptedImage, encoding: RawInferenceInput['encoding']): AcceptedBox {
    if (value === undefined || value === null || value === '') throw badRequest(ERROR_CODES.missingField, 'a "box" [x1, y1, x2, y2] is required');
    const units = unitsValue === undefined || unitsValue === null || unitsValue === '' ? 'px' : unitsValue;
    if (units !== 'px' && units !== 'norm') throw badRequest(ERROR_CODES.invalidField, 'units must be "px" or "norm"');
    let numbers: unknown = value;
    if (typeof value === 'string') {
      const text = value.trim();
      numbers = text.startsWith('[') ? this.jsonField('box', text) : text.split(',').map((part) => (part.trim() === '' ? Number.NaN : Number(part)));
    } else if (encoding === 'multipart') {
      throw badRequest(ERROR_CODES.invalidField, 'box must be "x1,y1,x2,y2" or a JSON array');
    }
    if (!Array.isArray(numbers) || numbers.length !== 4 || !numbers.every((n) => typeof n === 'number' && Number.isFinite(n))) {
      throw badRequest(ERROR_CODES.invalidField, 'box must be four finite numbers [x1, y1, x2, y2]');
    }
    const [x1, y1, x2, y2] = numbers as number[];
    const [width, height] = units === 'px' ? [image.width, image.height] : [1, 1];
    if (!(x2 > x1 && y2 > y1)) throw badRequest(ERROR_CODES.invalidField, `box [${numbers.join(', ')}] is empty: x2 must exceed x1 and y2 exceed y1`);
    if (x1 < 0 || y1 < 0 || x2 > width || y2 > height) {
      throw badRequest(ERROR_CODES.invalidField, `box [${numbers.join(', ')}] is outside the image (${units === 'px' ? `${image.width}×${image.height} px` : '[0, 1]'})`);
    }
    const px: AcceptedBox['px'] = units === 'px' ? [x1, y1, x2, y2] : [x1 * image.width, y1 * image.height, x2 * image.width, y2 * image.height];
    const percent = { x1: (100 * px[0]) / image.width, y1: (100 * px[1]) / image.height, x2: (100 * px[2]) / image.width, y2: (100 * px[3]) / image.height };
    return { px, percent };
  }

  /** Class names: a JSON array of strings, or (multipart, or a JSON string) a JSON array text or comma-separated names. */
  private acceptClasses(value: unknown, encoding: RawInferenceInput['encoding']): string[] {
    if (value === undefined || value === null || (encoding === 'multipart' && value === '')) return [];
    let list: unknown = value;
    if (typeof value === 'string') list = value.trim().startsWith('[') ? this.jsonField('classes', value) : value.split(',');
    if (!Array.isArray(list) || !list.every((name) => typeof name === 'string')) throw badRequest(ERROR_CODES.invalidField, 'classes must be a list of class names');
    const names = [...new Set(list.map((name: string) => name.replace(/\s+/g, ' ').trim()).filter((name) => name !== ''))];
    if (names.length > MAX_SEGMENTATION_CLASSES) throw badRequest(ERROR_CODES.invalidField, `classes: ${names.length} names; at most ${MAX_SEGMENTATION_CLASSES}`);
    const bad = names.find((name) => !CLASS_NAME.test(name));
    if (bad !== undefined) throw badRequest(ERROR_CODES.invalidField, `class name ${JSON.stringify(bad)}: at most 64 characters, without "*", commas or line breaks`);
    return names;
  }

  private acceptChangeOutput(value: unknown): ChangeOutput {
    if (value === undefined || value === null || value === '') return 'both';
    if (typeof value !== 'string' || !(CHANGE_OUTPUTS as readonly string[]).includes(value)) {
      throw badRequest(ERROR_CODES.invalidField, `output must be one of ${CHANGE_OUTPUTS.join(', ')}`);
    }
    return value as ChangeOutput;
  }

  private jsonField(name: string, text: string): unknown {
    try {
      return JSON.parse(text);
    } catch {
      throw badRequest(ERROR_CODES.invalidField, `${name}: not valid JSON`);
    }
  }

  /** The body as a record of known fields; an unknown field is refused so that typos never pass silently. */
  bodyFields(task: Task, body: unknown): Record<string, unknown> {
    if (body === undefined || body === null) return {};
    if (typeof body !== 'object' || Array.isArray(body)) throw badRequest(ERROR_CODES.badRequest, 'the body must be a JSON object');
    const allowed = FIELDS[task];
    for (const key of Object.keys(body)) {
      if (!allowed.has(key)) {
        throw badRequest(ERROR_CODES.unknownField, `unknown field "${key}" (accepted: ${[...allowed].join(', ')})`);
      }
    }
    return body as Record<string, unknown>;
  }

  /** Decodes the `image` field: base64 (standard or URL-safe alphabet) or a base64 `data:` URL. */
  imageFromField(value: unknown): Buffer {
    if (value === undefined || value === null || value === '') {
      throw badRequest(ERROR_CODES.missingImage, 'no image: send a multipart file field "image" or a JSON field "image" (base64 or data URL)');
    }
    if (typeof value !== 'string') throw badRequest(ERROR_CODES.invalidBase64, 'image must be a base64 string or a data URL');
    let text = value;
    const dataUrl = DATA_URL.exec(text);
    if (dataUrl) {
      // The declared media type is ignored: the format is sniffed from the bytes.
      if (!/;base64$/i.test(dataUrl[1])) throw badRequest(ERROR_CODES.invalidBase64, 'a data URL image must be base64-encoded (";base64,")');
      text = text.slice(dataUrl[0].length);
    }
    text = text.replace(/\s+/g, '');
    if (text === '') throw badRequest(ERROR_CODES.missingImage, 'the image is empty');
    if (!BASE64.test(text) || text.length % 4 === 1) throw badRequest(ERROR_CODES.invalidBase64, 'image is not valid base64');
    // Checked before decoding, so an oversized string never becomes a buffer.
    const decodedLength = Math.floor((text.replace(/=+$/, '').length * 3) / 4);
    if (decodedLength > this.limits.maxImageBytes) throw this.tooLarge(decodedLength);
    return Buffer.from(text, 'base64');
  }

  /** Format from the magic bytes, byte limit, then width × height from the header (pixels are never decoded here). */
  async acceptImage(bytes: Uint8Array): Promise<AcceptedImage> {
    if (bytes.byteLength === 0) throw badRequest(ERROR_CODES.missingImage, 'the image is empty');
    if (bytes.byteLength > this.limits.maxImageBytes) throw this.tooLarge(bytes.byteLength);
    const format = sniffImageFormat(bytes);
    if (format === null) {
      const unsupported = sniffUnsupportedImageFormat(bytes);
      const found = unsupported ? imageFormatLabel(unsupported) : undefined;
      throw new GatewayError(
        415,
        ERROR_CODES.unsupportedMediaType,
        `${found ? `${found} images are not supported` : 'unrecognised image format'}: send PNG, JPEG, WebP or TIFF/GeoTIFF`,
      );
    }
    const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const { width, height } = await this.readHeader(buffer, format);
    if (width * height > this.limits.maxImagePixels) {
      throw new GatewayError(
        422,
        ERROR_CODES.tooManyPixels,
        `image of ${width}×${height} = ${width * height} pixels exceeds the limit of ${this.limits.maxImagePixels} pixels`,
      );
    }
    return { bytes: buffer, format, mediaType: MEDIA_TYPES[format], width, height };
  }

  acceptQuestion(value: unknown): string {
    if (value === undefined || value === null) throw badRequest(ERROR_CODES.missingQuestion, 'a question is required');
    if (typeof value !== 'string') throw badRequest(ERROR_CODES.invalidQuestion, 'question must be a string');
    const question = value.trim();
    if (question === '') throw badRequest(ERROR_CODES.missingQuestion, 'the question is empty');
    const length = [...question].length;
    if (length > this.limits.maxQuestionChars) {
      throw new GatewayError(422, ERROR_CODES.questionTooLong, `the question has ${length} characters; the limit is ${this.limits.maxQuestionChars}`);
    }
    return question;
  }

  /** GenerationParams as an object (JSON) or as JSON text (multipart, or JSON as a string). */
  acceptParams(value: unknown, encoding: RawInferenceInput['encoding']): GenerationParams {
    if (value === undefined || value === null || (encoding === 'multipart' && value === '')) return {};
    let params = value;
    if (typeof value === 'string') {
      try {
        params = JSON.parse(value);
      } catch {
        throw badRequest(ERROR_CODES.invalidParams, 'params: not valid JSON');
      }
    }
    const parsed = this.paramsSchema.safeParse(params);
    if (!parsed.success) {
      const problems = formatIssues(parsed.error).map((problem) => (problem.startsWith('(root)') ? problem.replace('(root)', 'params') : `params.${problem}`));
      throw badRequest(ERROR_CODES.invalidParams, problems.join('; '));
    }
    return parsed.data;
  }

  /**
   * The deadline budget: the smaller of `timeoutMs` and `X-Request-Timeout-Ms` when given, else the
   * default. A value above the maximum is refused rather than cut, so the client learns the limit.
   */
  acceptTimeout(
    bodyValue: unknown,
    header: string | undefined,
    encoding: RawInferenceInput['encoding'],
    limits: { defaultTimeoutMs: number; maxTimeoutMs: number } = this.limits,
  ): number {
    const asked: number[] = [];
    if (bodyValue !== undefined && bodyValue !== null && !(encoding === 'multipart' && bodyValue === '')) {
      asked.push(this.timeoutValue('timeoutMs', bodyValue, encoding === 'multipart', limits.maxTimeoutMs));
    }
    if (header !== undefined && header.trim() !== '') asked.push(this.timeoutValue('X-Request-Timeout-Ms', header.trim(), true, limits.maxTimeoutMs));
    return asked.length > 0 ? Math.min(...asked) : limits.defaultTimeoutMs;
  }

  private timeoutValue(name: string, value: unknown, text: boolean, maxTimeoutMs: number): number {
    const number = text && typeof value === 'string' && DECIMAL.test(value) ? Number(value) : value;
    if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 1) {
      throw badRequest(ERROR_CODES.invalidTimeout, `${name} must be a positive integer number of milliseconds`);
    }
    if (number > maxTimeoutMs) {
      throw badRequest(ERROR_CODES.invalidTimeout, `${name}=${number} exceeds the maximum of ${maxTimeoutMs} ms`);
    }
    return number;
  }

  private async readHeader(bytes: Buffer, format: AcceptedImageFormat): Promise<{ width: number; height: number }> {
    let width: number | undefined;
    let height: number | undefined;
    try {
      // metadata() parses the header only; no pixel buffer is allocated.
      ({ width, height } = await sharp(bytes, { limitInputPixels: false }).metadata());
    } catch (error) {
      throw new GatewayError(422, ERROR_CODES.invalidImage, `the ${format.toUpperCase()} header cannot be read: ${(error as Error).message}`, { cause: error });
    }
    if (!width || !height) throw new GatewayError(422, ERROR_CODES.invalidImage, `the ${format.toUpperCase()} header has no dimensions`);
    return { width, height };
  }

  private tooLarge(byteLength: number): GatewayError {
    return new GatewayError(413, ERROR_CODES.payloadTooLarge, `image of ${byteLength} bytes exceeds the limit of ${this.limits.maxImageBytes} bytes`);
  }
}
