import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { expertQueueName, loadPackManifest, type InferenceResultJson, type PackManifest } from '@rsmoe/contracts';
import { MeshLauncher } from '../../apps/cli/src/mesh/mesh-launcher';
import { freePort } from '../../apps/cli/src/mesh/redis-locator';
import { deleteKeysWithPrefix } from '../support/redis-cleanup';

export const REDIS_URL = 'redis://127.0.0.1:6379';
export const PACK_DIR = resolve(__dirname, '../../models/fixtures/tiny-pack');
/** transformers' own tiny LLaVA-OneVision (random weights) with its outputs in reference.json. */
export const ONEVISION_DIR = resolve(__dirname, '../../models/fixtures/hf-reference/llava-onevision-tiny');

/** One case of the OneVision fixture's reference.json: transformers' own inputs and greedy tokens. */
export interface OneVisionReferenceCase {
  id: string;
  images: string[];
  prompt: string;
  maxNewTokens: number;
  greedyNewTokenIds: number[];
}

/** The OneVision fixture's reference case `id`. */
export function oneVisionReferenceCase(id: string): OneVisionReferenceCase {
  const reference = JSON.parse(readFileSync(join(ONEVISION_DIR, 'reference.json'), 'utf8')) as { cases: OneVisionReferenceCase[] };
  const found = reference.cases.find((c) => c.id === id);
  if (!found) throw new Error(`no reference case ${id} in ${ONEVISION_DIR}/reference.json`);
  return found;
}

/** A pack written to a temporary directory (model paths absolute, or relative to the repository's models). */
export function writeTempPack(manifest: object): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'rsmoe-e2e-pack-'));
  writeFileSync(join(dir, 'pack.json'), JSON.stringify(manifest, null, 2));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A mesh of real processes on real Redis, under prefixes no other run shares. */
export interface RunningMesh {
  mesh: MeshLauncher;
  manifest: PackManifest;
  url: string;
  routerPort: number;
  prefix: string;
  redis: Redis;
  queues: Map<string, Queue>;
  logs: string[];
  stop(): Promise<void>;
}

export async function startMesh(env: Record<string, string> = {}, packDir = PACK_DIR, options: { authMode?: 'required' | 'off' } = {}): Promise<RunningMesh> {
  const prefix = `e2e${randomBytes(5).toString('hex')}`;
  const logs: string[] = [];
  const routerPort = await freePort();
  const mesh = new MeshLauncher({
    packDir,
    redisUrl: REDIS_URL,
    keyPrefix: prefix,
    queuePrefix: prefix,
    gatewayPort: await freePort(),
    routerPort,
    env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1', ...env },
    ...(options.authMode ? { authMode: options.authMode } : {}),
    onLog: (service, line) => logs.push(`[${service}] ${line}`),
    readyTimeoutMs: 90_000,
  });
  await mesh.start();
  const manifest = loadPackManifest(packDir);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queues = new Map(manifest.experts.map((expert) => [expert.id, new Queue(expertQueueName(expert.id), { connection: redis, prefix })]));
  return {
    mesh,
    manifest,
    url: mesh.gatewayUrl,
    routerPort,
    prefix,
    redis,
    queues,
    logs,
    async stop() {
      await mesh.stop();
      await Promise.all([...queues.values()].map((queue) => queue.obliterate({ force: true }).catch(() => undefined)));
      await Promise.all([...queues.values()].map((queue) => queue.close()));
      // Remove every key this run wrote (results, blobs, features, queues).
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
    },
  };
}

/** A distinct synthetic 32×32 PNG per seed (a road, a field and noise), so outputs differ per image. */
export async function testImage(seed: number): Promise<Buffer> {
  const size = 32;
  const data = Buffer.alloc(size * size * 3);
  let state = seed * 2654435761 + 1;
  const random = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      const road = Math.abs(x - ((seed * 7) % size)) < 3;
      const field = (x + y + seed) % 16 < 8;
      data[i] = road ? 120 : field ? 60 : 30 + (seed * 13) % 90;
      data[i + 1] = road ? 120 : field ? 140 : 90;
      data[i + 2] = road ? 120 : 40 + Math.floor(random() * 60);
    }
  }
  return sharp(data, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

export async function postImage(
  url: string,
  path: '/v1/captions' | '/v1/vqa',
  image: Buffer,
  fields: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<{ status: number; body: InferenceResultJson & { error?: { code: string; message: string; requestId: string } }; headers: Headers }> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(image)]), 'image.png');
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  const response = await fetch(`${url}${path}`, { method: 'POST', body: form, headers });
  type Body = InferenceResultJson & { error?: { code: string; message: string; requestId: string } };
  return { status: response.status, body: (await response.json()) as Body, headers: response.headers };
}

/** Jobs ever added to each expert queue of this run, by expert id. */
export async function jobCounts(queues: Map<string, Queue>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [expertId, queue] of queues) {
    const byState = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'waiting-children');
    counts[expertId] = Object.values(byState).reduce((sum, count) => sum + count, 0);
  }
  return counts;
}
