import { join } from 'node:path';
import { env, REPO_ROOT } from '@rsmoe/config';
import { DEFAULT_SCENE_STORE_SUBDIR } from '@rsmoe/scenes';

/** The gateway's settings for whole scenes (POST /v1/scenes); spread into its configuration. */
export function sceneGatewayEnv() {
  return {
    /** The scene store: uploads are streamed here, results read from here (shared with the scene workers). Default `var/scenes`. */
    SCENE_STORE_DIR: env.string(join(REPO_ROOT, DEFAULT_SCENE_STORE_SUBDIR)),
    /** Largest scene upload, bytes. Default 1 GiB. */
    MAX_SCENE_BYTES: env.integer(1024 * 1024 * 1024, 1, 64 * 1024 * 1024 * 1024),
    /** Largest scene, width × height. Default 1 000 000 000 (31 623² pixels). */
    MAX_SCENE_PIXELS: env.integer(1_000_000_000, 1),
    /** The pack whose model input size gives the default tile size, and whose labels the default segmentation classes. */
    PACK_DIR: env.packDir(),
    /** Default tile side when the pack's input size cannot be read, px. Default 512. */
    SCENE_FALLBACK_TILE_SIZE: env.integer(512, 16, 4096),
    /** How long a finished scene's job record stays in the `scenes` queue, s (its state: the scene worker's SCENE_RESULT_TTL_S). */
    SCENE_RESULT_TTL_S: env.integer(86_400, 60),
  };
}
