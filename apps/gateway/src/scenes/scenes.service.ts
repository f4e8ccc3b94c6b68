import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { SCENES_QUEUE, SCENE_JOB_NAMES, createRedisKeys, isSceneId, loadPackManifest, type PackManifest, type Task } from '@rsmoe/contracts';
import type { Logger } from '@rsmoe/observability';
import {
  SceneFileStore,
  SceneInputError,
  SceneStateStore,
  TERMINAL_STATUSES,
  acceptScene,
  sceneProgress,
  scenePackDefaults,
  tileCount,
  type SceneProgress,
  type SceneSpec,
  type ScenePackDefaults,
  type SceneStatus,
} from '@rsmoe/scenes';
import type { ApiKeyLimiter } from '../adapters/api-key-limiter.adapter';
import { ERROR_CODES, GatewayError, type ErrorCode } from '../errors/gateway-error';
import type { GatewayConfig } from '../gateway.config';
import type { HttpRequest } from '../http/http-types';
import { receiveScene } from './scene-upload';

/** Who submits or reads a scene: the API key's id and tasks when AUTH_MODE=required. */
export interface SceneCaller {
  keyId?: string;
  tasks?: readonly Task[];
}

/** What POST /v1/scenes and GET /v1/scenes/{id} answer while the scene runs (and around its result). */
export interface SceneStatusAnswer {
  sceneId: string;
  status: SceneStatus;
  progress: SceneProgress;
  width: number;
  height: number;
  tiling: { tileSize: number; overlap: number; columns: number; rows: number };
  tasks: SceneSpec['tasks'];
  bands: [number, number, number];
  georeference: { status: 'georeferenced'; epsg: number } | { status: 'none'; message: string };
  createdAtUnixMs: number;
  finishedAtUnixMs?: number;
  error?: { code: string; message: string };
  links: { self: string; preview?: string; geojson?: string };
}

/** The scene tasks each need an API key allowed to run this mesh task. */
const TASK_OF_SCENE_TASK: Readonly<Record<string, Task>> = { caption: 'caption', classification: 'classification', grounding: 'grounding', segmentation: 'segmentation' };

/**
 * Whole scenes at the gateway: the upload streamed into the scene store, checked (acceptScene) before anything
 * is queued, its state created in Redis and one job added to `scenes` (job id = scene id) for a scene worker;
 * progress and results read back; DELETE cancels (the worker frees the scene's queued tile jobs) or, for a
 * finished scene, erases it.
 */
export class SceneService {
  private readonly queue: Queue;
  private readonly queueConnection: Redis;
  private readonly state: SceneStateStore;
  readonly files: SceneFileStore;
  private readonly defaults: ScenePackDefaults;

  constructor(
    private readonly config: GatewayConfig,
    redis: Redis,
    private readonly logger: Logger,
    /** Charges a scene's tiles to its API key's daily quota (AUTH_MODE=required). */
    private readonly limiter?: ApiKeyLimiter,
  ) {
    // A connection of the queue's own: BullMQ defines its 64 Lua commands on the client it is given, and
    // ioredis copies every defined command into each MULTI opened on that client (~40 µs of CPU each here),
    // which every inference request would pay twice (the blob put, the image binding).
    this.queueConnection = redis.duplicate();
    this.queue = new Queue(SCENES_QUEUE, { connection: this.queueConnection, prefix: config.QUEUE_PREFIX });
    this.queue.on('error', () => undefined);
    this.state = new SceneStateStore(redis, createRedisKeys(config.KEY_PREFIX));
    this.files = new SceneFileStore(config.SCENE_STORE_DIR);
    let manifest: PackManifest | undefined;
    try {
      manifest = loadPackManifest(config.PACK_DIR);
    } catch (error) {
      logger.warn('scenes: the pack cannot be read here; default tile size and classes from the configuration', { packDir: config.PACK_DIR, error: (error as Error).message });
    }
    this.defaults = scenePackDefaults(manifest, config.SCENE_FALLBACK_TILE_SIZE);
  }

  get packDefaults(): ScenePackDefaults {
    return this.defaults;
  }

  async submit(req: HttpRequest, caller: SceneCaller): Promise<SceneStatusAnswer> {
    const sceneId = randomBytes(16).toString('hex');
    const path = await this.files.prepare(sceneId);
    let spec: SceneSpec;
    try {
      const received = await receiveScene(req, path, this.config.MAX_SCENE_BYTES);
      spec = await acceptScene(
        {
          sceneId,
          path,
          head: await this.files.head(sceneId),
          fileName: received.fileName,
          bytes: received.bytes,
          fields: received.fields,
          ...(caller.keyId !== undefined ? { ownerKeyId: caller.keyId } : {}),
          now: Date.now(),
        },
        this.defaults,
        { maxPixels: this.config.MAX_SCENE_PIXELS },
      );
      this.checkKeyTasks(spec, caller);
    } catch (error) {
      await this.files.remove(sceneId).catch(() => undefined);
      if (error instanceof SceneInputError) throw new GatewayError(error.status, error.code as ErrorCode, error.message, { cause: error });
      throw error;
    }
    let quota: { usageKey: string; images: number } | undefined;
    try {
      quota = await this.chargeTiles(spec, caller);
    } catch (error) {
      await this.files.remove(sceneId).catch(() => undefined);
      throw error;
    }
    await this.state.create(spec, quota);
    await this.queue.add(SCENE_JOB_NAMES.driveScene, { sceneId }, {
      jobId: sceneId,
      // A scene job fails only on a fault of ours (Redis away); it resumes from its stored tiles when retried.
      attempts: 20,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: this.config.SCENE_RESULT_TTL_S },
      removeOnFail: { age: this.config.SCENE_RESULT_TTL_S },
    });
    this.logger.info('scene accepted', { sceneId, width: spec.raster.width, height: spec.raster.height, tiles: tileCount(spec.grid), tasks: Object.keys(spec.tasks) });
    return this.answer(spec, 'queued', sceneProgress({ spec, status: 'queued', tilesDone: 0, tilesSkipped: 0, tilesFailed: 0, updatedAtUnixMs: Date.now() }, Date.now()));
  }

  /** The scene's status and progress; with its result when done (GET /v1/scenes/{id}). */
  async describe(sceneId: string, caller: SceneCaller): Promise<SceneStatusAnswer & { result?: unknown }> {
    const state = await this.find(sceneId, caller);
    const answer = this.answer(state.spec, state.status, sceneProgress(state, Date.now()), state.finishedAtUnixMs, state.error);
    if (state.status !== 'done') return answer;
    const result = await this.files.readResult(sceneId);
    return result === undefined ? answer : { ...answer, result };
  }

  /** The result's GeoJSON alone (what QGIS opens), or the preview PNG: 409 until the scene is done. */
  async artefact(sceneId: string, caller: SceneCaller, which: 'geojson' | 'preview'): Promise<unknown> {
    const state = await this.find(sceneId, caller);
    if (state.status !== 'done') throw new GatewayError(409, ERROR_CODES.sceneNotDone, `scene ${sceneId} is ${state.status}: its ${which} exists once it is done`);
    if (which === 'preview') return (await this.files.readPreview(sceneId)) ?? notFound(sceneId);
    const result = (await this.files.readResult(sceneId)) as { geojson?: unknown } | undefined;
    return result?.geojson ?? notFound(sceneId);
  }

  /**
   * DELETE /v1/scenes/{id}: a queued or running scene is cancelled (its waiting scene job removed; a running
   * one's worker sees the status within SCENE_CANCEL_POLL_MS, stops and frees its queued tile jobs); a finished
   * scene is erased (its state and files). Returns what happened.
   */
  async cancel(sceneId: string, caller: SceneCaller): Promise<'cancelled' | 'erased'> {
    const state = await this.find(sceneId, caller);
    if (TERMINAL_STATUSES.includes(state.status)) {
      await this.state.delete(sceneId);
      await this.files.remove(sceneId);
      return 'erased';
    }
    await this.state.transition(sceneId, 'cancelled', { finishedAtUnixMs: Date.now() });
    // Not yet picked up by a worker: nobody else will free anything, so do it here.
    const job = await this.queue.getJob(sceneId);
    if (job && (await job.getState()) === 'waiting') {
      await job.remove().catch(() => undefined);
      await this.files.removeSource(sceneId);
    }
    this.logger.info('scene cancelled', { sceneId });
    return 'cancelled';
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.queueConnection.quit().catch(() => this.queueConnection.disconnect());
  }

  private async find(sceneId: string, caller: SceneCaller) {
    if (!isSceneId(sceneId)) throw notFound(sceneId);
    const state = await this.state.get(sceneId);
    if (!state) throw notFound(sceneId);
    if (this.config.AUTH_MODE === 'required' && state.spec.ownerKeyId !== caller.keyId) throw notFound(sceneId);
    return state;
  }

  /**
   * A daily quota counts images processed, one per tile for a scene: every tile is reserved now, all or none,
   * before anything is queued (429 quota_exceeded when they do not fit), and the tiles never processed
   * (nodata, failed, cancelled) are given back when the scene ends (SceneStateStore's terminal transition).
   */
  private async chargeTiles(spec: SceneSpec, caller: SceneCaller): Promise<{ usageKey: string; images: number } | undefined> {
    if (this.config.AUTH_MODE !== 'required' || caller.keyId === undefined || this.limiter === undefined) return undefined;
    const tiles = tileCount(spec.grid);
    const charge = await this.limiter.charge(caller.keyId, tiles);
    if (charge.outcome === 'charged') return charge.charged;
    if (charge.outcome === 'unauthenticated') throw new GatewayError(401, ERROR_CODES.unauthenticated, 'the API key was revoked while the scene was uploading');
    const seconds = Math.ceil(charge.retryAfterMs / 1000);
    throw new GatewayError(
      429,
      ERROR_CODES.quotaExceeded,
      `this scene is ${tiles} tiles, one image each of the daily quota; the key has ${Math.max(0, charge.quota.limit - charge.quota.used)} of ${charge.quota.limit} left today (it resets at 00:00 UTC, in ${seconds} s)`,
      { headers: { 'Retry-After': String(seconds) }, details: { dailyQuota: charge.quota.limit, used: charge.quota.used, tiles } },
    );
  }

  private checkKeyTasks(spec: SceneSpec, caller: SceneCaller): void {
    if (this.config.AUTH_MODE !== 'required' || caller.tasks === undefined) return;
    const denied = Object.keys(spec.tasks).filter((task) => !caller.tasks?.includes(TASK_OF_SCENE_TASK[task]));
    if (denied.length > 0) throw new GatewayError(403, ERROR_CODES.forbidden, `this API key may not run ${denied.join(', ')}`);
  }

  private answer(spec: SceneSpec, status: SceneStatus, progress: SceneProgress, finishedAtUnixMs?: number, error?: { code: string; message: string }): SceneStatusAnswer {
    const self = `/v1/scenes/${spec.sceneId}`;
    return {
      sceneId: spec.sceneId,
      status,
      progress,
      width: spec.raster.width,
      height: spec.raster.height,
      tiling: { tileSize: spec.grid.tileSize, overlap: spec.grid.overlap, columns: spec.grid.columns, rows: spec.grid.rows },
      tasks: spec.tasks,
      bands: spec.bands,
      georeference: spec.georeference
        ? { status: 'georeferenced', epsg: spec.georeference.crs.epsg }
        : { status: 'none', message: 'the scene has no georeferencing: results are in scene pixel coordinates' },
      createdAtUnixMs: spec.createdAtUnixMs,
      ...(finishedAtUnixMs !== undefined ? { finishedAtUnixMs } : {}),
      ...(error ? { error } : {}),
      links: { self, ...(status === 'done' ? { preview: `${self}/preview.png`, geojson: `${self}/geojson` } : {}) },
    };
  }
}

function notFound(sceneId: string): GatewayError {
  return new GatewayError(404, ERROR_CODES.sceneNotFound, `no scene ${sceneId} (never made, expired, or erased)`);
}
