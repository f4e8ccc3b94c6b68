import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error';
import type { HttpRequest } from './http-types';
import { readMultipartForm, type MultipartLimits } from './multipart-form';

const LIMITS: MultipartLimits = { fileBytes: 1000, fieldBytes: 100, files: 2, fields: 3, parts: 4 };

/** A server that reads each body with readMultipartForm and answers what it read, or the refusal. */
let server: Server;
let base: string;
/** How the last read ended: 'read', or the refusal's code. */
let lastOutcome: Promise<string>;

beforeAll(async () => {
  server = createServer((req, res) => {
    const fileFields = req.url === '/pair' ? ['before', 'after'] : ['image'];
    const reading = readMultipartForm(req as HttpRequest, fileFields, LIMITS);
    lastOutcome = reading.then(
      () => 'read',
      (error: unknown) => (error instanceof GatewayError ? error.code : String(error)),
    );
    reading.then(
      (form) => {
        const files = Object.fromEntries([...form.files].map(([name, bytes]) => [name, { length: bytes.length, sum: bytes.reduce((a, b) => a + b, 0) }]));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ fields: { ...form.fields }, prototypeFree: Object.getPrototypeOf(form.fields) === null, files }));
      },
      (error: unknown) => {
        const refusal = error instanceof GatewayError ? { status: error.status, code: error.code, message: error.message } : { status: 500, code: 'bug', message: String(error) };
        res.writeHead(refusal.status, { 'content-type': 'application/json' }).end(JSON.stringify(refusal));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const bytes = (length: number, value = 7): Blob => new Blob([new Uint8Array(length).fill(value)]);

async function post(form: FormData, path = '/'): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(base + path, { method: 'POST', body: form });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Sends `body` as it is, with the given Content-Type (for bodies FormData cannot make). */
function postRaw(body: Buffer, contentType: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const call = request(base, { method: 'POST', headers: { 'content-type': contentType, 'content-length': body.length } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> }));
    });
    call.on('error', reject);
    call.end(body);
  });
}

function form(entries: [string, string | Blob][]): FormData {
  const data = new FormData();
  for (const [name, value] of entries) {
    if (typeof value === 'string') data.append(name, value);
    else data.append(name, value, `${name}.png`);
  }
  return data;
}

describe('readMultipartForm', () => {
  it('reads the text fields and the file parts, byte for byte, at exactly their limits', async () => {
    const answer = await post(form([['question', 'q'.repeat(100)], ['image', bytes(1000, 3)], ['params', '{}']]));
    expect(answer).toEqual({
      status: 200,
      body: { fields: { question: 'q'.repeat(100), params: '{}' }, prototypeFree: true, files: { image: { length: 1000, sum: 3000 } } },
    });
    const pair = await post(form([['before', bytes(10, 1)], ['after', bytes(20, 2)]]), '/pair');
    expect(pair.body.files).toEqual({ before: { length: 10, sum: 10 }, after: { length: 20, sum: 40 } });
    // No file at all is for the intake to refuse (missing_image), not the reader.
    expect((await post(form([['question', 'why']]))).body).toMatchObject({ fields: { question: 'why' }, files: {} });
  });

  it('a field named like an Object.prototype member is a plain key', async () => {
    const answer = await post(form([['__proto__', 'x'], ['constructor', 'y']]));
    expect(answer.status).toBe(200);
    expect(answer.body.fields).toEqual({ ['__proto__']: 'x', constructor: 'y' });
  });

  it.each([
    ['a file one byte over the limit', form([['image', bytes(1001)]]), 413, 'payload_too_large', /file "image" is larger than the limit of 1000 bytes/],
    ['a field one byte over the limit', form([['params', 'p'.repeat(101)]]), 413, 'payload_too_large', /multipart field "params" is larger than 100 bytes/],
    ['a question over the field limit', form([['question', 'q'.repeat(101)]]), 422, 'question_too_long', /longer than the limit/],
    ['a file under another field name', form([['file', bytes(10)]]), 400, 'invalid_multipart', /unexpected file field "file": send `image`/],
    ['two files in one field', form([['image', bytes(10)], ['image', bytes(10)]]), 400, 'invalid_multipart', /"image" is given more than once/],
    ['a text field given twice', form([['question', 'a'], ['question', 'b']]), 400, 'invalid_multipart', /"question" is given more than once/],
    ['a text field and a file of one name', form([['image', 'text'], ['image', bytes(10)]]), 400, 'invalid_multipart', /"image" is given more than once/],
    ['more text fields than the limit', form([['a', '1'], ['b', '2'], ['c', '3'], ['d', '4']]), 413, 'payload_too_large', /more than 3 text fields/],
  ])('%s', async (_name, body, status, code, message) => {
    const answer = await post(body);
    expect(answer.status).toBe(status);
    expect(answer.body.code).toBe(code);
    expect(answer.body.message).toMatch(message);
  });

  it('more parts than the limit, each kind within its own: 413', async () => {
    const answer = await post(form([['a', '1'], ['b', '2'], ['c', '3'], ['before', bytes(1)], ['after', bytes(1)]]), '/pair');
    expect(answer).toMatchObject({ status: 413, body: { code: 'payload_too_large', message: 'more than 4 parts' } });
  });

  it('more files than the limit: 413', async () => {
    const answer = await post(form([['before', bytes(1)], ['after', bytes(1)], ['before', bytes(1)]]), '/pair');
    // The third file is refused by the count before its name is looked at.
    expect(answer).toMatchObject({ status: 413, body: { code: 'payload_too_large', message: 'more than 2 files' } });
  });

  it('a malformed body is 400 invalid_multipart naming the fault', async () => {
    const noBoundary = await postRaw(Buffer.from('anything'), 'multipart/form-data');
    expect(noBoundary).toMatchObject({ status: 400, body: { code: 'invalid_multipart', message: expect.stringMatching(/^malformed multipart body: /) } });
    const cutShort = Buffer.from('--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nPNGDATA');
    expect(await postRaw(cutShort, 'multipart/form-data; boundary=b')).toMatchObject({ status: 400, body: { code: 'invalid_multipart', message: 'malformed multipart body: Unexpected end of form' } });
  });

  it('a client that goes away mid-body settles the read (400 bad_request) instead of leaving it pending', async () => {
    const head = Buffer.from('--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n' + 'x'.repeat(500));
    const call = request(base, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=b', 'content-length': head.length + 10_000 } });
    call.on('error', () => undefined);
    call.write(head);
    await new Promise((resolve) => setTimeout(resolve, 50));
    call.destroy();
    const outcome = await Promise.race([lastOutcome, new Promise((resolve) => setTimeout(() => resolve('still pending after 2 s'), 2_000))]);
    expect(outcome).toBe('bad_request');
  });

  it('a refused upload is read off before the answer: a large body still being sent gets the 413, not a reset', async () => {
    const answer = await post(form([['image', bytes(4 * 1024 * 1024)]]));
    expect(answer).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
  });
});
