/**
 * One process of the mesh benchmark's `raw-mesh` path: the design's hops with no work at either end, so that
 * the benchmark can measure what the shape alone costs on this machine. `HOP_FLOOR_ROLE` picks the part:
 *
 * - `edge` (the gateway's place): a bare `node:http` server; it stores the request's body in Redis (one SET),
 *   calls the router over gRPC and answers with the router's reply.
 * - `router`: a bare gRPC server; it adds one plain BullMQ job per expert (the mesh's job shape), waits for
 *   every expert's reply on its pub/sub inbox, stores the result (one SET) and answers.
 * - `expert`: a BullMQ worker on one expert's queue; it reads the body (one GET) and publishes its reply.
 *
 * Each prints `ready` on stdout once it serves. Payloads are raw bytes, no protobuf, no JSON bodies: a floor.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { expertQueueName } from '@rsmoe/contracts';

const REPLY_TTL_MS = 60_000;
// A request whose expert process died fails after this instead of holding the benchmark forever.
const CALL_DEADLINE_MS = 10_000;

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

const bytes = {
  serialize: (value: Buffer): Buffer => value,
  deserialize: (value: Buffer): Buffer => value,
};

/** One unary method carrying raw bytes both ways. */
const HOP_FLOOR_SERVICE = {
  call: {
    path: '/rsmoe.bench.HopFloor/Call',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
} satisfies grpc.ServiceDefinition;

const redisUrl = required('REDIS_URL');
const prefix = required('HOP_FLOOR_PREFIX');
const inbox = `${prefix}:inbox`;
const connect = (): Redis => new Redis(redisUrl, { maxRetriesPerRequest: null });

async function edge(): Promise<void> {
  const redis = connect();
  const router = new grpc.Client(`127.0.0.1:${required('HOP_FLOOR_ROUTER_PORT')}`, grpc.credentials.createInsecure());
  const { path, requestSerialize, responseDeserialize } = HOP_FLOOR_SERVICE.call;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const key = `${prefix}:body:${randomBytes(8).toString('hex')}`;
      redis
        .set(key, Buffer.concat(chunks), 'PX', REPLY_TTL_MS)
        .then(
          () =>
            new Promise<Buffer>((resolve, reject) =>
              router.makeUnaryRequest(path, requestSerialize, responseDeserialize, Buffer.from(key), new grpc.Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (error, reply) =>
                error ? reject(error) : resolve(reply!),
              ),
            ),
        )
        .then(
          (reply) => response.writeHead(200, { 'content-type': 'application/json', 'content-length': reply.length }).end(reply),
          (error: Error) => response.writeHead(502).end(error.message),
        );
    });
  });
  await new Promise<void>((resolve) => server.listen(Number(required('HOP_FLOOR_EDGE_PORT')), '127.0.0.1', resolve));
}

async function router(): Promise<void> {
  const expertIds = required('HOP_FLOOR_EXPERTS').split(',');
  const redis = connect();
  const subscriber = connect();
  const queueConnection = connect();
  const queues = expertIds.map((id) => new Queue(expertQueueName(id), { connection: queueConnection, prefix }));
  const waiters = new Map<string, { missing: number; done: () => void }>();
  subscriber.on('message', (_channel: string, requestId: string) => {
    const waiter = waiters.get(requestId);
    if (waiter && --waiter.missing === 0) waiter.done();
  });
  await subscriber.subscribe(inbox);
  const server = new grpc.Server();
  server.addService(HOP_FLOOR_SERVICE, {
    call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const requestId = randomBytes(8).toString('hex');
      const body = call.request.toString();
      const replied = new Promise<void>((resolve) => waiters.set(requestId, { missing: expertIds.length, done: resolve }));
      Promise.all(queues.map((queue) => queue.add('generate', { requestId, body }, { removeOnComplete: true, removeOnFail: true })))
        .then(() => replied)
        .then(() => {
          const result = Buffer.from(JSON.stringify({ requestId, experts: expertIds.length }));
          return redis.set(`${prefix}:result:${requestId}`, result, 'PX', REPLY_TTL_MS).then(() => result);
        })
        .then(
          (result) => callback(null, result),
          (error: Error) => callback({ code: grpc.status.INTERNAL, message: error.message }),
        )
        .finally(() => waiters.delete(requestId));
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${required('HOP_FLOOR_ROUTER_PORT')}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
  );
}

async function expert(): Promise<void> {
  const redis = connect();
  const worker = new Worker(
    expertQueueName(required('HOP_FLOOR_EXPERT')),
    async (job) => {
      const data = job.data as { requestId: string; body: string };
      await redis.getBuffer(data.body);
      await redis.publish(inbox, data.requestId);
    },
    { connection: connect(), prefix, concurrency: 16 },
  );
  await worker.waitUntilReady();
}

const roles: Record<string, () => Promise<void>> = { edge, router, expert };
const role = roles[required('HOP_FLOOR_ROLE')];
if (!role) throw new Error(`HOP_FLOOR_ROLE must be one of ${Object.keys(roles).join(', ')}`);
role().then(
  () => console.log('ready'),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
process.on('SIGTERM', () => process.exit(0));
