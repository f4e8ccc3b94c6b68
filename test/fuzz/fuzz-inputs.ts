import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { createRng as seededRandom } from '../../libs/runtime/src/sampling';

/**
 * A seeded generator of hostile inputs for the gateway: the same seed gives the same cases, byte for byte,
 * so a failure found in CI can be replayed. Nothing here talks to the network; fuzz.spec.ts sends the cases.
 */

export class Dice {
  constructor(readonly random: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = Math.floor(this.random() * 256);
    return out;
  }
  /** A string of `length` characters drawn from `alphabet`. */
  text(length: number, alphabet: string): string {
    let out = '';
    for (let i = 0; i < length; i++) out += alphabet[Math.floor(this.random() * alphabet.length)];
    return out;
  }
}

/** An HTTP request made with fetch. */
export interface FetchCase {
  kind: 'fetch';
  category: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

/** Bytes written on a raw TCP connection (malformed HTTP, stalls), each chunk after `gapMs`. */
export interface RawCase {
  kind: 'raw';
  category: string;
  chunks: Buffer[];
  gapMs: number;
}

export type FuzzCase = FetchCase | RawCase;

/** The valid images every mutation starts from, made with sharp (never downloaded). */
export interface BaseImages {
  png: Buffer;
  jpeg: Buffer;
  tiff: Buffer;
  webp: Buffer;
}

export async function makeBaseImages(): Promise<BaseImages> {
  const scene = sharp({ create: { width: 24, height: 24, channels: 3, background: '#4a7a3c' } }).composite([
    { input: { create: { width: 8, height: 12, channels: 3, background: '#d0d0d0' } }, left: 6, top: 4 },
  ]);
  const raw = await scene.raw().toBuffer();
  const from = () => sharp(raw, { raw: { width: 24, height: 24, channels: 3 } });
  return {
    png: await from().png().toBuffer(),
    jpeg: await from().jpeg({ quality: 80 }).toBuffer(),
    tiff: await from().tiff().toBuffer(),
    webp: await from().webp().toBuffer(),
  };
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** A valid-looking PNG whose IHDR (correct CRC) declares width × height, with a tiny IDAT. */
export function pngDeclaring(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(64))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The JPEG with its SOF0/SOF2 frame header patched to declare width × height (16-bit each). */
export function jpegDeclaring(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; ) {
    if (out[i] !== 0xff) break;
    const marker = out[i + 1];
    const length = out.readUInt16BE(i + 2);
    if (marker === 0xc0 || marker === 0xc2) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
    i += 2 + length;
  }
  return out;
}

/** The WebP (lossy VP8) with its frame header patched to declare width × height (14-bit each). */
export function webpDeclaring(webp: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(webp);
  const vp8 = out.indexOf('VP8 ', 12, 'latin1');
  if (vp8 < 0) return out;
  // Chunk header (8) + frame tag (3) + start code (3), then 2 bytes width, 2 bytes height.
  out.writeUInt16LE(width & 0x3fff, vp8 + 14);
  out.writeUInt16LE(height & 0x3fff, vp8 + 16);
  return out;
}

/** The TIFF with its first IFD's ImageWidth (256) and ImageLength (257) patched (little-endian files). */
export function tiffDeclaring(tiff: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(tiff);
  const little = out.toString('latin1', 0, 2) === 'II';
  const u16 = (at: number) => (little ? out.readUInt16LE(at) : out.readUInt16BE(at));
  const u32 = (at: number) => (little ? out.readUInt32LE(at) : out.readUInt32BE(at));
  const ifd = u32(4);
  const entries = u16(ifd);
  for (let e = 0; e < entries; e++) {
    const at = ifd + 2 + e * 12;
    const tag = u16(at);
    if (tag !== 256 && tag !== 257) continue;
    const value = tag === 256 ? width : height;
    // Rewrite as LONG (type 4), count 1.
    if (little) {
      out.writeUInt16LE(4, at + 2);
      out.writeUInt32LE(1, at + 4);
      out.writeUInt32LE(value, at + 8);
    } else {
      out.writeUInt16BE(4, at + 2);
      out.writeUInt32BE(1, at + 4);
      out.writeUInt32BE(value, at + 8);
    }
  }
  return out;
}

function truncate(dice: Dice, bytes: Buffer): Buffer {
  return bytes.subarray(0, dice.int(1, Math.max(1, bytes.length - 1)));
}

function flipBits(dice: Dice, bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  const flips = dice.int(1, 24);
  // Mostly in the header, where parsers branch; sometimes anywhere.
  for (let i = 0; i < flips; i++) {
    const at = dice.chance(0.6) ? dice.int(0, Math.min(out.length - 1, 64)) : dice.int(0, out.length - 1);
    out[at] ^= 1 << dice.int(0, 7);
  }
  return out;
}

const BOUNDARY = 'fuzzBoundary7MA4YWxkTrZu0gW';

/** A multipart body from parts (a part with `filename` is a file part). */
export function multipart(parts: Array<{ name: string; value: Buffer | string; filename?: string; contentType?: string }>, boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename !== undefined ? `; filename="${part.filename}"` : ''}`;
    const type = part.contentType ?? (part.filename !== undefined ? 'application/octet-stream' : undefined);
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type ? `Content-Type: ${type}\r\n` : ''}\r\n`, 'latin1'));
    chunks.push(typeof part.value === 'string' ? Buffer.from(part.value, 'utf8') : part.value);
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const MULTIPART_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;
const ENDPOINTS = ['/v1/captions', '/v1/vqa'] as const;

function imageCase(dice: Dice, category: string, bytes: Buffer): FetchCase {
  const path = dice.pick(ENDPOINTS);
  const parts: Parameters<typeof multipart>[0] = [{ name: 'image', value: bytes, filename: 'scene.bin' }];
  if (path === '/v1/vqa') parts.push({ name: 'question', value: 'how many buildings are there ?' });
  if (dice.chance(0.5)) {
    return { kind: 'fetch', category, method: 'POST', path, headers: { 'content-type': MULTIPART_TYPE }, body: multipart(parts) };
  }
  const json: Record<string, unknown> = { image: bytes.toString('base64') };
  if (path === '/v1/vqa') json.question = 'is there water ?';
  return { kind: 'fetch', category, method: 'POST', path, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(json)) };
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-';
const HOSTILE_ALPHABET = `${ID_ALPHABET} :;,./\\'"<>{}[]|!@#$%^&*()=+?~\`\t\u00e9\u00ff`;

const BAD_PARAM_VALUES: readonly unknown[] = [
  -1, 0, 1e300, -1e300, 1.5, 2 ** 53, 513, 9, 'ten', '', null, true, [], {}, [1, 2], { nested: { deeper: 1 } }, 'NaN', 1e-320,
];
const PARAM_FIELDS = ['maxNewTokens', 'numBeams', 'doSample', 'temperature', 'topK', 'topP', 'seed', 'repetitionPenalty', 'lengthPenalty', 'stopStrings', 'unknownField'] as const;

function badParams(dice: Dice): unknown {
  switch (dice.int(0, 6)) {
    case 0:
      return { doSample: true, numBeams: dice.int(2, 8) };
    case 1:
      return { stopStrings: Array.from({ length: dice.int(17, 400) }, () => dice.text(dice.int(1, 30), ID_ALPHABET)) };
    case 2:
      return { stopStrings: [dice.text(dice.int(1025, 60_000), ID_ALPHABET)] };
    case 3:
      return dice.pick(['[]', '"params"', '42', 'null', '{"maxNewTokens":', '{{}}']);
    default: {
      const params: Record<string, unknown> = {};
      for (let i = dice.int(1, 3); i > 0; i--) params[dice.pick(PARAM_FIELDS)] = dice.pick(BAD_PARAM_VALUES);
      return params;
    }
  }
}

/** `count` cases from `seed`: about a tenth valid, the rest hostile, every category represented. */
export function generateCases(seed: number, base: BaseImages, count = 1_200): FuzzCase[] {
  const dice = new Dice(seededRandom(seed));
  const formats = ['png', 'jpeg', 'tiff', 'webp'] as const;
  const makers: Array<[weight: number, make: () => FuzzCase]> = [
    // Random bytes, bare or behind a real magic number.
    [8, () => {
      const magic = dice.pick([Buffer.alloc(0), base.png.subarray(0, 8), base.jpeg.subarray(0, 3), base.tiff.subarray(0, 4), Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1')]);
      return imageCase(dice, 'random-bytes', Buffer.concat([magic, dice.bytes(dice.int(0, 4096))]));
    }],
    [14, () => imageCase(dice, 'truncated-image', truncate(dice, base[dice.pick(formats)]))],
    [14, () => imageCase(dice, 'bit-flipped-image', flipBits(dice, base[dice.pick(formats)]))],
    [6, () => {
      const side = dice.pick([100_000, 65_535, 16_383, 50_000, 2 ** 31 - 1, 0]);
      const other = dice.pick([side, 1, 100_000]);
      const format = dice.pick(formats);
      const bytes =
        format === 'png' ? pngDeclaring(side, other) : format === 'jpeg' ? jpegDeclaring(base.jpeg, side & 0xffff, other & 0xffff) : format === 'webp' ? webpDeclaring(base.webp, side, other) : tiffDeclaring(base.tiff, side, other);
      return imageCase(dice, 'declared-size-bomb', bytes);
    }],
    [4, () => {
      const size = dice.int(1_100_000, 4_000_000);
      const body = dice.pick([
        () => `{"image":"${'A'.repeat(size)}"}`,
        () => `${'['.repeat(size / 2)}${']'.repeat(size / 2)}`,
        () => JSON.stringify({ image: base.png.toString('base64'), params: { stopStrings: Array.from({ length: size / 1000 }, () => 'z'.repeat(1000)) } }),
      ])();
      return { kind: 'fetch', category: 'huge-json', method: 'POST', path: dice.pick(ENDPOINTS), headers: { 'content-type': 'application/json' }, body: Buffer.from(body) };
    }],
    [5, () => {
      const depth = dice.int(33, 200_000);
      const open = dice.pick(['[', '{"a":']);
      const close = open === '[' ? ']' : '}';
      const body = `{"image":"${base.png.toString('base64')}","params":${open.repeat(depth)}1${close.repeat(depth)}}`;
      return { kind: 'fetch', category: 'nested-json', method: 'POST', path: '/v1/captions', headers: { 'content-type': 'application/json' }, body: Buffer.from(body) };
    }],
    [6, () => {
      const valid = JSON.stringify({ image: base.png.toString('base64'), params: { maxNewTokens: 8 }, timeoutMs: 5000 });
      const body = dice.pick([
        () => valid.slice(0, dice.int(0, valid.length - 1)),
        () => JSON.stringify({ image: dice.pick([42, true, ['a'], { b: 1 }, '%%%', 'data:image/png,xyz', 'data:;base64,']) }),
        () => JSON.stringify({ image: base.png.toString('base64'), timeoutMs: dice.pick([-1, 0, 1e12, '5s', 1.5, null, []]) }),
        () => JSON.stringify({ image: base.png.toString('base64'), [dice.text(dice.int(1, 40), HOSTILE_ALPHABET)]: 1 }),
        () => JSON.stringify(dice.pick([[], 'text', 7, null])),
        () => `\uFEFF${valid}`,
        () => valid.replace('{', '{"__proto__":{"polluted":true},'),
      ])();
      return { kind: 'fetch', category: 'malformed-json', method: 'POST', path: dice.pick(ENDPOINTS), headers: { 'content-type': dice.pick(['application/json', 'application/json; charset=latin1', 'text/json', 'application/x-www-form-urlencoded']) }, body: Buffer.from(body) };
    }],
    [9, () => {
      const good = multipart([{ name: 'image', value: base.png, filename: 'a.png' }]);
      const variants: Array<() => { body: Buffer; type: string }> = [
        () => ({ body: good, type: 'multipart/form-data' }),
        () => ({ body: good, type: 'multipart/form-data; boundary=someOtherBoundary' }),
        () => ({ body: good.subarray(0, dice.int(1, good.length - 1)), type: MULTIPART_TYPE }),
        () => ({ body: flipBits(dice, good.subarray(0, 120)), type: MULTIPART_TYPE }),
        () => ({ body: multipart(Array.from({ length: dice.int(9, 40) }, (_, i) => ({ name: `f${i}`, value: 'x' }))), type: MULTIPART_TYPE }),
        () => ({ body: multipart([{ name: 'image', value: base.png, filename: 'a.png' }, { name: 'image', value: base.jpeg, filename: 'b.jpg' }]), type: MULTIPART_TYPE }),
        () => ({ body: multipart([{ name: 'params', value: base.png, filename: 'p.json' }]), type: MULTIPART_TYPE }),
        () => ({ body: multipart([{ name: dice.text(dice.int(200, 5000), ID_ALPHABET), value: 'v' }]), type: MULTIPART_TYPE }),
        () => ({ body: multipart([{ name: 'image', value: base.png, filename: 'a.png' }, { name: 'question', value: dice.bytes(dice.int(1, 3000)) }]), type: MULTIPART_TYPE }),
        () => ({ body: Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--${BOUNDARY}--\r\n`), type: MULTIPART_TYPE }),
        () => ({ body: dice.bytes(dice.int(0, 2000)), type: MULTIPART_TYPE }),
      ];
      const { body, type } = dice.pick(variants)();
      return { kind: 'fetch', category: 'broken-multipart', method: 'POST', path: dice.pick(ENDPOINTS), headers: { 'content-type': type }, body };
    }],
    [12, () => {
      const value = dice.pick([
        () => dice.text(dice.int(1, 128), ID_ALPHABET),
        () => dice.text(dice.int(129, 4000), ID_ALPHABET),
        () => dice.text(dice.int(1, 200), HOSTILE_ALPHABET),
        () => '',
        () => '../../../etc/passwd',
        () => `${'a'.repeat(64)}:${'b'.repeat(64)}`,
      ])();
      const header = dice.pick(['x-request-id', 'x-correlation-id', 'x-request-timeout-ms', 'traceparent', 'content-type', 'accept', 'origin']);
      const target = dice.pick([
        () => ({ method: 'POST' as const, path: '/v1/captions', body: multipart([{ name: 'image', value: base.png, filename: 'a.png' }]), type: MULTIPART_TYPE }),
        () => ({ method: 'GET' as const, path: `/v1/requests/${encodeURIComponent(dice.text(dice.int(1, 200), HOSTILE_ALPHABET))}` }),
        () => ({ method: 'GET' as const, path: dice.pick(['/v2/health/live', '/v1/experts', '/docs-json', '/v1/requests/', '/%2e%2e/%2e%2e/etc/passwd', `/v1/${'x'.repeat(5000)}`]) }),
        () => ({ method: dice.pick(['PUT', 'DELETE', 'OPTIONS'] as const), path: dice.pick(['/v1/captions', '/v1/vqa', '/v1/requests/abc']) }),
      ])();
      const headers: Record<string, string> = {};
      if ('type' in target && target.type) headers['content-type'] = target.type;
      headers[header] = value;
      return { kind: 'fetch', category: 'hostile-headers', method: target.method, path: target.path, headers, ...('body' in target && target.body ? { body: target.body } : {}) };
    }],
    [14, () => {
      const params = badParams(dice);
      const text = typeof params === 'string' ? params : JSON.stringify(params);
      if (dice.chance(0.5)) {
        return { kind: 'fetch', category: 'bad-params', method: 'POST', path: '/v1/captions', headers: { 'content-type': MULTIPART_TYPE }, body: multipart([{ name: 'image', value: base.png, filename: 'a.png' }, { name: 'params', value: text }]) };
      }
      const body = `{"image":"${base.png.toString('base64')}","params":${typeof params === 'string' ? JSON.stringify(params) : text}}`;
      return { kind: 'fetch', category: 'bad-params', method: 'POST', path: '/v1/captions', headers: { 'content-type': 'application/json' }, body: Buffer.from(body) };
    }],
    [4, () => {
      const chunks = dice.pick([
        () => [dice.bytes(dice.int(1, 300))],
        () => [Buffer.from(`GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(dice.int(17_000, 40_000))}\r\n\r\n`)],
        () => [Buffer.from(`POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n`)],
        () => [Buffer.from(`POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`)],
        () => [Buffer.from(`GET / HTTP/9.9\r\n\r\n`)],
        () => [Buffer.from(`GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Id: a\u0000b\r\n\r\n`, 'latin1')],
        () => [Buffer.from(`POST /v1/captions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nFFFFFFFFFFFF\r\n{`)],
      ])();
      return { kind: 'raw', category: 'raw-http', chunks, gapMs: 0 };
    }],
    [1, () => {
      const head = `POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: ${dice.pick([MULTIPART_TYPE, 'application/json'])}\r\nContent-Length: ${dice.int(5000, 1_000_000)}\r\n\r\n`;
      return { kind: 'raw', category: 'stalled-upload', chunks: [Buffer.from(head), dice.bytes(dice.int(0, 100))], gapMs: 10 };
    }],
    [8, () => {
      const path = dice.pick(ENDPOINTS);
      const parts: Parameters<typeof multipart>[0] = [{ name: 'image', value: base[dice.pick(formats)], filename: 'scene' }];
      if (path === '/v1/vqa') parts.push({ name: 'question', value: 'how many buildings are there ?' });
      if (dice.chance(0.5)) parts.push({ name: 'params', value: JSON.stringify({ maxNewTokens: dice.int(1, 512), numBeams: dice.int(1, 8) }) });
      return { kind: 'fetch', category: 'valid', method: 'POST', path, headers: { 'content-type': MULTIPART_TYPE, 'x-request-id': dice.text(dice.int(1, 128), ID_ALPHABET) }, body: multipart(parts) };
    }],
  ];
  const total = makers.reduce((sum, [weight]) => sum + weight, 0);
  const cases: FuzzCase[] = [];
  // Every category at least once, then by weight.
  for (const [, make] of makers) cases.push(make());
  while (cases.length < count) {
    let roll = dice.random() * total;
    for (const [weight, make] of makers) {
      roll -= weight;
      if (roll < 0) {
        cases.push(make());
        break;
      }
    }
  }
  return cases;
}
