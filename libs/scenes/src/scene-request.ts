import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PackManifest } from '@rsmoe/contracts';
import { SCENE_ERROR_CODES, SceneInputError } from './scene-errors';
import { openSceneRaster, resolveBands, type SceneLimits } from './scene-raster';
import { SCENE_TASK_NAMES, type SceneSpec, type SceneTaskName, type SceneTasks } from './scene.types';
import { planTileGrid } from './tile-grid';

/** Most grounding phrases and segmentation classes one scene may ask for. */
export const MAX_SCENE_PHRASES = 8;
export const MAX_SCENE_CLASSES = 32;
const MAX_PHRASE_CHARS = 200;

/** The text fields of POST /v1/scenes, as sent (multipart fields or query parameters). */
export interface SceneFields {
  tasks?: string;
  phrases?: string;
  classes?: string;
  tileSize?: string;
  overlap?: string;
  bands?: string;
}

export const SCENE_FIELD_NAMES: readonly (keyof SceneFields)[] = ['tasks', 'phrases', 'classes', 'tileSize', 'overlap', 'bands'];

/** What the pack decides for a scene: default tile size (its model input) and default segmentation classes. */
export interface ScenePackDefaults {
  tileSize: number;
  segmentationClasses: string[];
}

function invalidField(message: string): SceneInputError {
  return new SceneInputError(400, SCENE_ERROR_CODES.invalidField, message);
}

/** A list field: a JSON array of strings, or comma-separated text. */
function listField(name: string, value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  let items: unknown;
  if (value.trim().startsWith('[')) {
    try {
      items = JSON.parse(value);
    } catch {
      throw invalidField(`${name}: not valid JSON`);
    }
  } else items = value.split(',');
  if (!Array.isArray(items) || items.some((item) => typeof item !== 'string')) throw invalidField(`${name}: a JSON list of strings or comma-separated text`);
  const cleaned = (items as string[]).map((item) => item.trim()).filter((item) => item !== '');
  return [...new Set(cleaned)];
}

function integerField(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (!/^\d+$/.test(value.trim())) throw invalidField(`${name}: an integer, got ${JSON.stringify(value)}`);
  return Number(value.trim());
}

/** The tasks and their inputs; throws SceneInputError 400 naming the field. */
export function parseSceneTasks(fields: SceneFields, defaults: Pick<ScenePackDefaults, 'segmentationClasses'>): SceneTasks {
  const names = listField('tasks', fields.tasks);
  if (names === undefined || names.length === 0) {
    throw new SceneInputError(400, SCENE_ERROR_CODES.missingField, `tasks: name at least one of ${SCENE_TASK_NAMES.join(', ')}`);
  }
  const unknown = names.filter((name) => !(SCENE_TASK_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) throw invalidField(`tasks: unknown task${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; a scene takes ${SCENE_TASK_NAMES.join(', ')}`);
  const wanted = new Set(names as SceneTaskName[]);
  const tasks: SceneTasks = {};
  if (wanted.has('caption')) tasks.caption = true;
  if (wanted.has('classification')) tasks.classification = true;
  const phrases = listField('phrases', fields.phrases);
  if (wanted.has('grounding')) {
    if (!phrases || phrases.length === 0) throw new SceneInputError(400, SCENE_ERROR_CODES.missingField, 'phrases: grounding needs at least one phrase (what to find)');
    if (phrases.length > MAX_SCENE_PHRASES) throw invalidField(`phrases: at most ${MAX_SCENE_PHRASES}, got ${phrases.length}`);
    const long = phrases.find((phrase) => phrase.length > MAX_PHRASE_CHARS);
    if (long !== undefined) throw invalidField(`phrases: each at most ${MAX_PHRASE_CHARS} characters`);
    tasks.grounding = phrases;
  } else if (phrases) throw invalidField('phrases: only with the grounding task');
  const classes = listField('classes', fields.classes);
  if (wanted.has('segmentation')) {
    const chosen = (classes ?? defaults.segmentationClasses).filter((name) => name.toLowerCase() !== 'others');
    if (chosen.length === 0) throw new SceneInputError(400, SCENE_ERROR_CODES.missingField, 'classes: segmentation needs the classes to segment (the pack names no default)');
    if (chosen.length > MAX_SCENE_CLASSES) throw invalidField(`classes: at most ${MAX_SCENE_CLASSES}, got ${chosen.length}`);
    if (chosen.some((name) => /[*,\n]/.test(name))) throw invalidField('classes: a class name may not contain `*`, `,` or a line break');
    tasks.segmentation = chosen;
  } else if (classes) throw invalidField('classes: only with the segmentation task');
  return tasks;
}

/**
 * Checks a scene uploaded to `path` and every field against it, and returns its spec; nothing is queued. The
 * order is the cheap checks first: fields (400), then the file (415, 422: corrupt or truncated, compression,
 * sample format, pixel limit, georeferencing), then bands (422) and the tiling (400). Throws SceneInputError.
 */
export async function acceptScene(
  input: { sceneId: string; path: string; head: Uint8Array; fileName: string; bytes: number; fields: SceneFields; ownerKeyId?: string; now: number },
  defaults: ScenePackDefaults,
  limits: SceneLimits,
): Promise<SceneSpec> {
  const { fields } = input;
  const tasks = parseSceneTasks(fields, defaults);
  const tileSize = integerField('tileSize', fields.tileSize) ?? defaults.tileSize;
  const overlap = integerField('overlap', fields.overlap) ?? Math.round(tileSize / 8);
  let requestedBands: number[] | undefined;
  if (fields.bands !== undefined && fields.bands.trim() !== '') {
    const parts = fields.bands.split(',').map((part) => part.trim());
    if (parts.some((part) => !/^\d+$/.test(part))) throw invalidField(`bands: 0-based band indices, comma-separated (e.g. 2,1,0), got ${JSON.stringify(fields.bands)}`);
    requestedBands = parts.map(Number);
  }
  // Cheap before the file is opened: a bad tiling is the client's to fix whatever the file holds.
  planTileGrid(tileSize, tileSize, tileSize, overlap);
  const raster = await openSceneRaster(input.path, input.head, limits);
  try {
    const bands = resolveBands(requestedBands, raster.info.bandCount);
    const grid = planTileGrid(raster.info.width, raster.info.height, tileSize, overlap);
    const plain = raster.info.bitsPerSample === 8 && raster.info.sampleFormat === 'uint';
    const distinct = [...new Set(bands)];
    const stretch = plain ? undefined : await raster.sampleStretch(distinct);
    return {
      sceneId: input.sceneId,
      createdAtUnixMs: input.now,
      ...(input.ownerKeyId !== undefined ? { ownerKeyId: input.ownerKeyId } : {}),
      file: { name: input.fileName, bytes: input.bytes },
      raster: raster.info,
      bands,
      ...(stretch ? { stretch } : {}),
      grid,
      tasks,
      georeference: raster.georeference ?? null,
    };
  } finally {
    await raster.close();
  }
}

/** Side of a square model input in a preprocessor or processor config (size, crop_size or shortest_edge). */
function inputSide(config: Record<string, unknown>): number | undefined {
  const sides: number[] = [];
  for (const key of ['size', 'crop_size']) {
    const value = config[key];
    if (typeof value === 'number') sides.push(value);
    else if (value && typeof value === 'object') {
      for (const inner of ['height', 'width', 'shortest_edge']) {
        const side = (value as Record<string, unknown>)[inner];
        if (typeof side === 'number') sides.push(side);
      }
    }
  }
  const nested = config.image_processor;
  if (nested && typeof nested === 'object') {
    const side = inputSide(nested as Record<string, unknown>);
    if (side !== undefined) sides.push(side);
  }
  return sides.length > 0 ? Math.max(...sides) : undefined;
}

/**
 * The pack's defaults for scenes: the tile size is the largest model input side among its experts (tiles are
 * sent at the scene's own resolution, so a tile of the model's input size is not downsampled), else
 * `fallbackTileSize`; the segmentation classes are the pack's `labels.segmentation`.
 */
export function scenePackDefaults(manifest: PackManifest | undefined, fallbackTileSize: number): ScenePackDefaults {
  const sides = (manifest?.experts ?? []).flatMap((expert) => {
    for (const name of ['preprocessor_config.json', 'processor_config.json']) {
      const file = join(expert.modelDir, name);
      if (!existsSync(file)) continue;
      try {
        const side = inputSide(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>);
        if (side !== undefined) return [side];
      } catch {
        // An unreadable config leaves the fallback.
      }
    }
    return [];
  });
  return { tileSize: sides.length > 0 ? Math.max(...sides) : fallbackTileSize, segmentationClasses: manifest?.labels.segmentation ?? [] };
}
