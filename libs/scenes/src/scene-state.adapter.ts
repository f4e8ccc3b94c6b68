import type { Redis } from 'ioredis';
import type { RedisKeys } from '@rsmoe/contracts';
import type { SceneProgress, SceneSpec, SceneStatus, TileRecord } from './scene.types';

/** A scene's state as Redis holds it. */
export interface SceneState {
  spec: SceneSpec;
  status: SceneStatus;
  tilesDone: number;
  tilesSkipped: number;
  tilesFailed: number;
  updatedAtUnixMs: number;
  /** When the driver last (re)started, and how many tiles were done then (for the rate and ETA). */
  runStartedAtUnixMs?: number;
  runStartDone?: number;
  finishedAtUnixMs?: number;
  /** Why a scene failed. */
  error?: { code: string; message: string };
}

export const TERMINAL_STATUSES: readonly SceneStatus[] = ['done', 'failed', 'cancelled'];

/**
 * Stores a tile once; counts it only when it was new (a re-run of a tile after a restart is not counted twice).
 * A scene no longer running (cancelled, or gone) takes no more tiles.
 */
const RECORD_TILE = `
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' and status ~= 'queued' then return -1 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'tilesDone', 1)
  if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'tilesSkipped', 1) end
  if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'tilesFailed', 1) end
  redis.call('HSET', KEYS[1], 'updatedAtUnixMs', ARGV[5])
  return 1
end
return 0`;

/**
 * Moves a scene to a status unless it is already in a terminal one (a cancel is never overwritten). Entering a
 * terminal status settles the quota once: of the images reserved at submission (one per tile), those of tiles
 * never processed (skipped as nodata, failed, or not run before a cancel) go back to the key's daily usage.
 */
const TRANSITION = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local current = redis.call('HGET', KEYS[1], 'status')
if current == 'done' or current == 'failed' or current == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updatedAtUnixMs', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[1] == 'done' or ARGV[1] == 'failed' or ARGV[1] == 'cancelled' then
  local quota = redis.call('HMGET', KEYS[1], 'quotaUsageKey', 'quotaImages', 'tilesDone', 'tilesSkipped', 'tilesFailed')
  if quota[1] and redis.call('HSETNX', KEYS[1], 'quotaSettled', '1') == 1 then
    local processed = tonumber(quota[3]) - tonumber(quota[4]) - tonumber(quota[5])
    local unused = tonumber(quota[2]) - processed
    if unused > 0 then
      -- The usage key is the one the gateway charged (its UTC day), named in the scene's own hash.
      local left = redis.call('DECRBY', quota[1], unused)
      if left <= 0 then redis.call('DEL', quota[1]) end
    end
  end
end
return 1`;

/**
 * Scene job state in Redis, shared by the gateway (create, read, cancel) and the scene worker (drive):
 * one hash per scene (spec, status, counters), one hash of finished tiles (index → TileRecord), one set of
 * tile requests at the router. A scene's keys have no TTL while it runs (Redis runs with noeviction: they are
 * small, a few hundred bytes per tile); a finished scene keeps its state hash `ttlSeconds`, its tiles are
 * deleted (the result lives in the scene store).
 */
export class SceneStateStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A new scene, queued. `quota`: the daily-usage counter charged for its tiles (AUTH_MODE=required), settled
   * when the scene ends (see TRANSITION).
   */
  async create(spec: SceneSpec, quota?: { usageKey: string; images: number }): Promise<void> {
    const at = String(this.now());
    await this.redis.hset(this.keys.sceneKey(spec.sceneId), {
      spec: JSON.stringify(spec),
      status: 'queued',
      tilesDone: '0',
      tilesSkipped: '0',
      tilesFailed: '0',
      updatedAtUnixMs: at,
      ...(quota ? { quotaUsageKey: quota.usageKey, quotaImages: String(quota.images) } : {}),
    });
  }

  async get(sceneId: string): Promise<SceneState | undefined> {
    const fields = await this.redis.hgetall(this.keys.sceneKey(sceneId));
    if (fields.spec === undefined || fields.status === undefined) return undefined;
    const number = (name: string) => (fields[name] === undefined ? undefined : Number(fields[name]));
    return {
      spec: JSON.parse(fields.spec) as SceneSpec,
      status: fields.status as SceneStatus,
      tilesDone: number('tilesDone') ?? 0,
      tilesSkipped: number('tilesSkipped') ?? 0,
      tilesFailed: number('tilesFailed') ?? 0,
      updatedAtUnixMs: number('updatedAtUnixMs') ?? 0,
      ...(fields.runStartedAtUnixMs !== undefined ? { runStartedAtUnixMs: Number(fields.runStartedAtUnixMs) } : {}),
      ...(fields.runStartDone !== undefined ? { runStartDone: Number(fields.runStartDone) } : {}),
      ...(fields.finishedAtUnixMs !== undefined ? { finishedAtUnixMs: Number(fields.finishedAtUnixMs) } : {}),
      ...(fields.error !== undefined ? { error: JSON.parse(fields.error) as { code: string; message: string } } : {}),
    };
  }

  async status(sceneId: string): Promise<SceneStatus | undefined> {
    return ((await this.redis.hget(this.keys.sceneKey(sceneId), 'status')) ?? undefined) as SceneStatus | undefined;
  }

  /**
   * Moves the scene to `status` (with extra fields) unless it is done, failed or cancelled already. Returns
   * whether it moved (false: terminal, or no such scene).
   */
  async transition(sceneId: string, status: SceneStatus, fields: Record<string, string | number> = {}): Promise<boolean> {
    const args = Object.entries(fields).flatMap(([name, value]) => [name, String(value)]);
    const moved = (await this.redis.eval(TRANSITION, 1, this.keys.sceneKey(sceneId), status, String(this.now()), ...args)) as number;
    return moved === 1;
  }

  /** The driver (re)starts: the rate and ETA count from now. */
  async markRunStart(sceneId: string, tilesDone: number): Promise<void> {
    await this.redis.hset(this.keys.sceneKey(sceneId), { runStartedAtUnixMs: String(this.now()), runStartDone: String(tilesDone) });
  }

  /** Stores a finished tile (once: a second record of the same tile is ignored). Returns whether it was new. */
  async recordTile(sceneId: string, record: TileRecord): Promise<boolean> {
    const added = (await this.redis.eval(
      RECORD_TILE,
      2,
      this.keys.sceneKey(sceneId),
      this.keys.sceneTilesKey(sceneId),
      String(record.index),
      JSON.stringify(record),
      record.skipped ? '1' : '0',
      (record.failures ?? []).length > 0 ? '1' : '0',
      String(this.now()),
    )) as number;
    return added === 1;
  }

  /** Indexes of the tiles already finished. */
  async doneTiles(sceneId: string): Promise<Set<number>> {
    return new Set((await this.redis.hkeys(this.keys.sceneTilesKey(sceneId))).map(Number));
  }

  /** Every finished tile, read in pages. */
  async tiles(sceneId: string): Promise<Map<number, TileRecord>> {
    const records = new Map<number, TileRecord>();
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(this.keys.sceneTilesKey(sceneId), cursor, 'COUNT', 500);
      for (let i = 0; i < entries.length; i += 2) records.set(Number(entries[i]), JSON.parse(entries[i + 1]) as TileRecord);
      cursor = next;
    } while (cursor !== '0');
    return records;
  }

  async addInflight(sceneId: string, requestId: string): Promise<void> {
    await this.redis.sadd(this.keys.sceneInflightKey(sceneId), requestId);
  }

  async removeInflight(sceneId: string, requestId: string): Promise<void> {
    await this.redis.srem(this.keys.sceneInflightKey(sceneId), requestId);
  }

  async inflight(sceneId: string): Promise<string[]> {
    return this.redis.smembers(this.keys.sceneInflightKey(sceneId));
  }

  /** A finished scene: its state kept `ttlSeconds`, its tiles and in-flight set deleted. */
  async retire(sceneId: string, ttlSeconds: number): Promise<void> {
    await this.redis
      .multi()
      .expire(this.keys.sceneKey(sceneId), ttlSeconds)
      .del(this.keys.sceneTilesKey(sceneId), this.keys.sceneInflightKey(sceneId))
      .exec();
  }

  async delete(sceneId: string): Promise<void> {
    await this.redis.del(this.keys.sceneKey(sceneId), this.keys.sceneTilesKey(sceneId), this.keys.sceneInflightKey(sceneId));
  }
}

/** Progress of a scene: counts, and the rate and ETA since the driver last (re)started. */
export function sceneProgress(state: SceneState, now: number): SceneProgress {
  const total = state.spec.grid.columns * state.spec.grid.rows;
  const progress: SceneProgress = { tilesTotal: total, tilesDone: state.tilesDone, tilesSkipped: state.tilesSkipped, tilesFailed: state.tilesFailed };
  if (state.runStartedAtUnixMs !== undefined && state.runStartDone !== undefined && !TERMINAL_STATUSES.includes(state.status)) {
    const seconds = (now - state.runStartedAtUnixMs) / 1000;
    const done = state.tilesDone - state.runStartDone;
    if (seconds > 0 && done > 0) {
      progress.tilesPerSecond = done / seconds;
      progress.etaSeconds = Math.round((total - state.tilesDone) / progress.tilesPerSecond);
    }
  }
  return progress;
}
