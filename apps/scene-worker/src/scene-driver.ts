import { randomBytes } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ImageRefJson, InferenceResultJson } from '@rsmoe/contracts';
import type { Logger } from '@rsmoe/observability';
import {
  SceneInputError,
  renderScenePreview,
  stitchScene,
  tileAt,
  tileCount,
  type SceneFileStore,
  type SceneRaster,
  type SceneSpec,
  type SceneStateStore,
  type Tile,
  type TileFailure,
  type TileRecord,
} from '@rsmoe/scenes';
import { TileCallError, type TileCall, type TileRouterPort } from './tile-router.adapter';

/** How the driver runs: concurrency, deadlines, retries. */
export interface SceneDriverOptions {
  /** Tiles of one scene at the router at once (each runs its tasks in parallel). */
  tileConcurrency: number;
  /** Deadline of one tile request, ms (caption, classification, grounding). */
  tileTimeoutMs: number;
  /** Deadline of a segmentation tile request, ms (masks are long text). */
  longTileTimeoutMs: number;
  /** A tile task that timed out this many times is recorded as failed instead of retried. */
  maxTimeouts: number;
  /** How long a finished scene's state is kept in Redis, s. */
  resultTtlSeconds: number;
  /** How often a running scene checks whether it was cancelled, ms. */
  cancelPollMs: number;
}

/** The driver's outside world; every piece is an adapter (Redis, disk, router, queues). */
export interface SceneDriverDeps {
  state: SceneStateStore;
  files: SceneFileStore;
  openRaster(spec: SceneSpec, path: string): Promise<SceneRaster>;
  /** Stores a tile's PNG in the blob store (what the router and experts read), and deletes it when done. */
  blobs: { put(bytes: Uint8Array, mediaType: string): Promise<ImageRefJson>; delete(sha256: string): Promise<unknown> };
  encodePng(rgb: Uint8Array, width: number, height: number): Promise<Buffer>;
  router: TileRouterPort;
  /** Removes the queued expert jobs (and deadline jobs) of these tile requests; returns how many were removed. */
  removeTileJobs(requestIds: readonly string[]): Promise<number>;
  /**
   * Removes every queued bulk expert job whose id starts with `<sceneId>-` (the prioritized and delayed sets:
   * tile jobs always go in at bulk priority, so the sweep reads no interactive backlog); returns how many.
   */
  sweepSceneJobs(sceneId: string): Promise<number>;
  logger: Logger;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** How a scene job ended this run. */
export type DriveOutcome = 'done' | 'failed' | 'cancelled' | 'missing' | 'interrupted';

/** A tile's task as the driver sends it. */
interface TileTask {
  /** Short key in the request id: cap, cls, seg, g<i>. */
  key: string;
  call: Pick<TileCall, 'task' | 'query' | 'classes'>;
}

function tileTasks(spec: SceneSpec): TileTask[] {
  const tasks: TileTask[] = [];
  if (spec.tasks.caption) tasks.push({ key: 'cap', call: { task: 'caption' } });
  if (spec.tasks.classification) tasks.push({ key: 'cls', call: { task: 'classification' } });
  (spec.tasks.grounding ?? []).forEach((phrase, i) => tasks.push({ key: `g${i}`, call: { task: 'grounding', query: phrase } }));
  if (spec.tasks.segmentation) tasks.push({ key: 'seg', call: { task: 'segmentation', classes: spec.tasks.segmentation } });
  return tasks;
}

/** Transient router outcomes: the tile is asked again (after a pause), never recorded as failed. */
const TRANSIENT_CODES = new Set([GrpcStatus.UNAVAILABLE, GrpcStatus.RESOURCE_EXHAUSTED, GrpcStatus.NOT_FOUND, GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN, GrpcStatus.ABORTED]);

class Cancelled extends Error {
  override readonly name = 'Cancelled';
}

/**
 * Drives one scene to its end, resumably. Tiles already in Redis are never redone; the rest are read from the
 * scene file one window at a time, skipped when empty (nodata, uniform), stored as PNG in the blob store and
 * sent to the router at bulk priority (one call per task, in parallel), at most `tileConcurrency` tiles at once,
 * each tile's outputs stored in Redis the moment it is done. Transient router failures (a restart, admission,
 * a lost blob) are retried until they pass; what an expert could not answer (experts_failed, unparseable) is
 * recorded with the tile. Then the scene is stitched, its result and preview written to the scene store and its
 * tiles dropped from Redis. Every run has its own request-id nonce, and the queued jobs of the previous run's
 * tiles are removed first: a restart loses at most the tiles that were at the router, never a finished one.
 */
export class SceneDriver {
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly deps: SceneDriverDeps,
    private readonly options: SceneDriverOptions,
  ) {
    this.now = deps.now ?? Date.now;
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async drive(sceneId: string, shutdown: AbortSignal): Promise<DriveOutcome> {
    const { state, files, logger } = this.deps;
    const current = await state.get(sceneId);
    if (!current) return 'missing';
    if (current.status === 'cancelled') {
      await this.freeInflight(sceneId);
      await files.removeSource(sceneId);
      return 'cancelled';
    }
    if (current.status === 'done' || current.status === 'failed') return current.status;
    const { spec } = current;
    // Left over from a run that died: their jobs are still queued but nobody waits for them.
    await this.freeInflight(sceneId);
    const done = await state.doneTiles(sceneId);
    if (!(await state.transition(sceneId, 'running'))) return this.terminalOutcome(sceneId);
    await state.markRunStart(sceneId, done.size);
    logger.info('scene running', { sceneId, tilesTotal: tileCount(spec.grid), tilesDone: done.size });

    const cancel = new AbortController();
    const stopWatching = this.watchCancel(sceneId, cancel);
    const onShutdown = (): void => cancel.abort(shutdown.reason);
    shutdown.addEventListener('abort', onShutdown, { once: true });
    const nonce = randomBytes(4).toString('hex');
    let raster: SceneRaster | undefined;
    try {
      raster = await this.deps.openRaster(spec, files.sourcePath(sceneId));
      const pending = Array.from({ length: tileCount(spec.grid) }, (_, i) => i).filter((i) => !done.has(i));
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < pending.length && !cancel.signal.aborted) {
          const tile = tileAt(spec.grid, pending[next++], spec.raster.width, spec.raster.height);
          await this.runTile(spec, raster as SceneRaster, tile, nonce, cancel.signal);
        }
      };
      // Every lane ends before anything else happens: a cancel must not free jobs that a lane is still adding.
      const lanes = await Promise.allSettled(Array.from({ length: Math.max(1, this.options.tileConcurrency) }, lane));
      const failure = lanes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected' && !(outcome.reason instanceof Cancelled));
      if (failure) throw failure.reason;
      if (cancel.signal.aborted) throw new Cancelled();
      await state.transition(sceneId, 'stitching');
      const records = await state.tiles(sceneId);
      const stitched = await stitchScene(spec, records);
      const preview = await renderScenePreview(raster, spec, { ...(stitched.mosaic ? { mosaic: stitched.mosaic } : {}), boxes: stitched.boxes });
      await files.writeResult(sceneId, stitched.result, preview);
      if (!(await state.transition(sceneId, 'done', { finishedAtUnixMs: this.now() }))) return this.terminalOutcome(sceneId);
      await state.retire(sceneId, this.options.resultTtlSeconds);
      await files.removeSource(sceneId);
      logger.info('scene done', { sceneId, tiles: records.size, features: stitched.result.geojson.features.length });
      return 'done';
    } catch (error) {
      if (error instanceof Cancelled || cancel.signal.aborted) {
        const status = await state.status(sceneId);
        if (status === 'cancelled') {
          // Twice: a router that had the call when it was cancelled may still be adding its jobs.
          await this.freeInflight(sceneId, this.options.cancelPollMs * 2);
          // What no in-flight id names: a job an expert retried after its router withdrew the request.
          const swept = await this.deps.sweepSceneJobs(sceneId);
          if (swept > 0) logger.info('swept queued tile jobs of a cancelled scene', { sceneId, jobsRemoved: swept });
          await files.removeSource(sceneId);
          await state.retire(sceneId, this.options.resultTtlSeconds);
          logger.info('scene cancelled', { sceneId });
          return 'cancelled';
        }
        // The worker is stopping: the scene stays running in Redis and resumes on the next pick-up.
        await this.freeInflight(sceneId);
        return 'interrupted';
      }
      if (error instanceof SceneInputError) {
        await state.transition(sceneId, 'failed', { finishedAtUnixMs: this.now(), error: JSON.stringify({ code: error.code, message: error.message }) });
        await state.retire(sceneId, this.options.resultTtlSeconds);
        logger.warn('scene failed', { sceneId, code: error.code, error: error.message });
        return 'failed';
      }
      throw error;
    } finally {
      stopWatching();
      shutdown.removeEventListener('abort', onShutdown);
      await raster?.close();
    }
  }

  private async terminalOutcome(sceneId: string): Promise<DriveOutcome> {
    const status = await this.deps.state.status(sceneId);
    return status === 'done' || status === 'failed' || status === 'cancelled' ? status : 'missing';
  }

  /** Polls the scene's status; a cancel (DELETE) aborts every tile request of this run. */
  private watchCancel(sceneId: string, cancel: AbortController): () => void {
    const timer = setInterval(() => {
      this.deps.state.status(sceneId).then(
        (status) => {
          if (status === 'cancelled' || status === undefined) cancel.abort(new Cancelled());
        },
        () => undefined,
      );
    }, this.options.cancelPollMs);
    return () => clearInterval(timer);
  }

  /** Removes the queued jobs of the scene's tile requests left at the router (again after `againAfterMs`, when given). */
  private async freeInflight(sceneId: string, againAfterMs?: number): Promise<void> {
    const requestIds = await this.deps.state.inflight(sceneId);
    if (requestIds.length === 0) return;
    let removed = await this.deps.removeTileJobs(requestIds);
    if (againAfterMs !== undefined) {
      await this.sleep(againAfterMs);
      removed += await this.deps.removeTileJobs(requestIds);
    }
    for (const requestId of requestIds) await this.deps.state.removeInflight(sceneId, requestId);
    this.deps.logger.info('freed queued tile jobs', { sceneId, requests: requestIds.length, jobsRemoved: removed });
  }

  private async runTile(spec: SceneSpec, raster: SceneRaster, tile: Tile, nonce: string, signal: AbortSignal): Promise<void> {
    const { state, blobs } = this.deps;
    const window = await raster.readWindow(tile, spec.bands, spec.stretch);
    if (window.empty) {
      await state.recordTile(spec.sceneId, { index: tile.index, skipped: window.empty });
      return;
    }
    const png = await this.deps.encodePng(window.rgb, tile.width, tile.height);
    let image = await blobs.put(png, 'image/png');
    const record: TileRecord = { index: tile.index };
    const failures: TileFailure[] = [];
    try {
      await Promise.all(
        tileTasks(spec).map(async ({ key, call }) => {
          let attempt = 0;
          let timeouts = 0;
          for (;;) {
            if (signal.aborted) throw new Cancelled();
            const requestId = `${spec.sceneId}-${nonce}-t${tile.index}-${key}-${attempt}`;
            const longTask = call.task === 'segmentation';
            await state.addInflight(spec.sceneId, requestId);
            let outcome: { result: InferenceResultJson } | { error: unknown };
            try {
              outcome = {
                result: await this.deps.router.run({
                  requestId,
                  image,
                  ...call,
                  deadlineUnixMs: this.now() + (longTask ? this.options.longTileTimeoutMs : this.options.tileTimeoutMs),
                  signal,
                }),
              };
            } catch (error) {
              outcome = { error };
            }
            // A cancelled call's jobs may still be queued: its id stays in the set until freeInflight removes them.
            if (signal.aborted) throw new Cancelled();
            await state.removeInflight(spec.sceneId, requestId);
            if ('result' in outcome) {
              this.absorb(record, failures, key, call, outcome.result, tile);
              return;
            }
            const error = outcome.error;
            if (!(error instanceof TileCallError)) throw error;
            attempt += 1;
            if (error.code === GrpcStatus.DEADLINE_EXCEEDED || error.code === GrpcStatus.CANCELLED) {
              timeouts += 1;
              if (timeouts >= this.options.maxTimeouts) {
                failures.push({ task: call.task, code: 'deadline_exceeded', message: `timed out ${timeouts} times (${error.details})` });
                return;
              }
            } else if (error.code === GrpcStatus.NOT_FOUND) {
              // The blob store lost the tile (a Redis restart): store it again.
              image = await blobs.put(png, 'image/png');
            } else if (!TRANSIENT_CODES.has(error.code)) {
              failures.push({ task: call.task, code: error.reason ?? GrpcStatus[error.code] ?? String(error.code), message: error.details });
              return;
            }
            await this.sleep(Math.min(10_000, Math.max(error.retryAfterMs ?? 0, 250 * 2 ** Math.min(attempt, 5))));
          }
        }),
      );
    } finally {
      await blobs.delete(image.sha256).catch(() => undefined);
    }
    if (failures.length > 0) record.failures = failures;
    await state.recordTile(spec.sceneId, record);
  }

  /** One tile task's result into the tile record: boxes moved to scene pixels; no output = a failure. */
  private absorb(record: TileRecord, failures: TileFailure[], key: string, call: TileTask['call'], result: InferenceResultJson, tile: Tile): void {
    if (!result.experts.some((expert) => expert.status === 'ok')) {
      const first = result.experts[0];
      failures.push({
        task: call.task,
        code: first?.errorCode ?? first?.status ?? 'experts_failed',
        message: first?.error ?? (first ? `${first.expertId}: ${first.status}` : 'no expert was routed'),
      });
      return;
    }
    switch (call.task) {
      case 'caption':
        record.caption = result.caption ?? '';
        return;
      case 'classification':
        if (result.label !== undefined) record.label = result.label;
        return;
      case 'grounding':
        record.boxes ??= [];
        for (const box of result.boxes ?? []) {
          record.boxes.push({
            phrase: call.query ?? key,
            box: [tile.x + (box.x1 / 100) * tile.width, tile.y + (box.y1 / 100) * tile.height, tile.x + (box.x2 / 100) * tile.width, tile.y + (box.y2 / 100) * tile.height],
          });
        }
        return;
      case 'segmentation':
        if (result.mask) record.mask = { width: result.mask.width, height: result.mask.height, classes: result.mask.classes, labels: result.mask.labels };
        return;
    }
  }
}
