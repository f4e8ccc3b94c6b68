import { join } from 'node:path';
import { env, parseEnv, REPO_ROOT, sharedServiceEnv, type Env } from '@rsmoe/config';
import { DEFAULT_SCENE_STORE_SUBDIR } from '@rsmoe/scenes';

/** Default scene store: `var/scenes` in the repository (a volume shared with the gateway in a deployment). */
export const DEFAULT_SCENE_STORE_DIR = join(REPO_ROOT, DEFAULT_SCENE_STORE_SUBDIR);

/** Every setting of the scene worker, from its environment; defaults live here and only here. */
export function loadSceneWorkerConfig(source: Env) {
  return parseEnv(
    'scene-worker',
    {
      ...sharedServiceEnv(),
      PACK_DIR: env.packDir(),
      /** `host:port` of the router's gRPC server. */
      ROUTER_URL: env.string('127.0.0.1:50051'),
      /** The scene store (uploaded scenes, results, previews): the gateway's SCENE_STORE_DIR. */
      SCENE_STORE_DIR: env.string(DEFAULT_SCENE_STORE_DIR),
      /** Scenes this worker drives at once. */
      SCENE_CONCURRENCY: env.integer(1, 1, 64),
      /** Tiles of one scene at the router at once (each runs its tasks in parallel): the bulk load one scene puts on the mesh. */
      SCENE_TILE_CONCURRENCY: env.integer(8, 1, 256),
      /** Deadline of one tile request (caption, classification, grounding), ms. */
      SCENE_TILE_TIMEOUT_MS: env.integer(120_000, 1_000, 300_000),
      /** Deadline of one segmentation tile request, ms. */
      SCENE_LONG_TILE_TIMEOUT_MS: env.integer(300_000, 1_000, 1_800_000),
      /** A tile task that timed out this many times is recorded as failed. */
      SCENE_TILE_MAX_TIMEOUTS: env.integer(3, 1, 100),
      /** How long a finished scene's state (and result) is kept, s. */
      SCENE_RESULT_TTL_S: env.integer(86_400, 60),
      /** The scene job's BullMQ lock, ms: a dead worker's scene is taken over within about this plus SCENE_STALLED_CHECK_MS. */
      SCENE_LOCK_MS: env.integer(10_000, 1_000),
      SCENE_STALLED_CHECK_MS: env.integer(5_000, 500),
      /** How often a running scene checks whether it was cancelled, ms. */
      SCENE_CANCEL_POLL_MS: env.integer(500, 50),
      /** TTL of the tile PNGs in the blob store, s (each is deleted as soon as its tile is done). */
      BLOB_TTL_S: env.integer(900, 1),
      /** How often the scene store is swept of scenes whose state expired, s. */
      SCENE_SWEEP_INTERVAL_S: env.integer(600, 1),
      /** A scene directory without state is removed once nothing was written to it for this long, s (an upload in progress has no state yet). */
      SCENE_SWEEP_GRACE_S: env.integer(3_600, 60),
      DRAIN_TIMEOUT_MS: env.integer(10_000, 0),
    },
    source,
  );
}

export type SceneWorkerConfig = ReturnType<typeof loadSceneWorkerConfig>;
