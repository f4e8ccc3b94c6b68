import { z } from 'zod';
import { parseWith } from './validation';

/**
 * The `scenes` queue: one job per whole-scene request (POST /v1/scenes), consumed by apps/scene-worker, which
 * drives the scene's tiles through the router at bulk priority. A queue name is a Redis key: renaming it is a
 * migration.
 */
export const SCENES_QUEUE = 'scenes';

/** Job names of the `scenes` queue. */
export const SCENE_JOB_NAMES = Object.freeze({
  /** Drive one scene to its end (tiles, stitching): data SceneJobData. Resumes from the tiles already stored. */
  driveScene: 'drive-scene',
} as const);

/** Scene ids: 32 lower-case hex characters (16 random bytes), made by the gateway; also the scene job's id. */
export const SCENE_ID_PATTERN = /^[0-9a-f]{32}$/;

export function isSceneId(value: unknown): value is string {
  return typeof value === 'string' && SCENE_ID_PATTERN.test(value);
}

/** The data of a `drive-scene` job: only the scene's id; its spec and progress live in Redis (libs/scenes). */
export interface SceneJobData {
  sceneId: string;
}

const sceneJobDataSchema = z.object({ sceneId: z.string().regex(SCENE_ID_PATTERN, 'must be 32 lower-case hex characters') }).strict();

/** Validates a scene job's data; throws ContractValidationError naming every bad field. */
export function parseSceneJobData(value: unknown): SceneJobData {
  return parseWith(sceneJobDataSchema, 'SceneJobData', value);
}

/**
 * BullMQ priority of bulk jobs (a scene's tiles): any priority > 0 puts a job in BullMQ's `prioritized` set,
 * which workers take only when the plain `wait` list of interactive jobs (priority 0) is empty, and the router
 * counts them against MAX_BULK_WAITING_PER_EXPERT instead of the interactive limit.
 */
export const BULK_JOB_PRIORITY = 10;

/** gRPC metadata key of a router call's priority: `bulk` for a scene's tiles; absent = interactive. */
export const PRIORITY_METADATA_KEY = 'x-rsmoe-priority';

/** The priorities a router call may ask for. */
export type RequestPriority = 'interactive' | 'bulk';
