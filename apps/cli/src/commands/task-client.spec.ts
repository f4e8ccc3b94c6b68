import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayRequestError } from './gateway-access';
import { GatewayTaskClient } from './task-client';

/** Answers by path: what a broken or slow gateway might send. */
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  if (req.url === '/v1/classify') {
    res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req-1' });
    res.end(JSON.stringify({ requestId: 'req-1', task: 'classification', boxes: [{ boxPx: [1, 2, 3] }] }));
  } else if (req.url === '/v1/grounding') {
    res.writeHead(502, { 'content-type': 'text/html', 'x-request-id': 'req-2' });
    res.end('<html>\n<body>Bad Gateway</body>\n</html>');
  }
  // Any other path: never answered.
});
let url = '';
beforeAll(async () => {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((done) => server.close(() => done()));
});

const image = { bytes: new Uint8Array([1, 2, 3]), filename: 'scene.png' };

async function failure(request: Promise<unknown>): Promise<GatewayRequestError> {
  const error = await request.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(GatewayRequestError);
  return error as GatewayRequestError;
}

describe('GatewayTaskClient', () => {
  it('an answer without the task fields it reads is bad_response naming the field and the request', async () => {
    const error = await failure(new GatewayTaskClient({ url }).classify(image));
    expect(error).toMatchObject({ httpStatus: 200, errorCode: 'bad_response', requestId: 'req-1' });
    expect(error.message).toMatch(/^the answer of \/v1\/classify is not a task answer: boxes\.0\.boxPx: .*\(request req-1\)$/);
  });

  it('a refusal that is not the gateway JSON keeps the status, one line of the body and the header request id', async () => {
    const error = await failure(new GatewayTaskClient({ url }).ground(image, 'a road'));
    expect(error).toMatchObject({ httpStatus: 502, errorCode: 'http_502', requestId: 'req-2' });
    expect(error.message).toBe('HTTP 502: <html> <body>Bad Gateway</body> </html> (request req-2)');
  });

  it('no answer within the timeout is a timeout error, not a network one', async () => {
    const error = await failure(new GatewayTaskClient({ url, timeoutMs: 200 }).segment(image, { classes: ['building'] }));
    expect(error).toMatchObject({ httpStatus: 0, errorCode: 'timeout', message: `no answer from the gateway at ${url} within 200 ms` });
  });
});
