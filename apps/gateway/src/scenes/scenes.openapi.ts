import type { OpenAPIObject, ParameterObject, ReferenceObject, SchemaObject } from '@nestjs/swagger';
import type { GatewayConfig } from '../gateway.config';

type PathsObject = OpenAPIObject['paths'];

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } as ReferenceObject } } });
const sceneId: ParameterObject = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{32}$' } };

const sceneStatus: SchemaObject = {
  type: 'object',
  description: 'A scene job: its status, progress (tiles done of total, skipped as nodata or uniform, failed; rate and ETA), tiling, tasks and georeference; `result` once done.',
  properties: {
    sceneId: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'running', 'stitching', 'done', 'failed', 'cancelled'] },
    progress: {
      type: 'object',
      properties: {
        tilesTotal: { type: 'integer' },
        tilesDone: { type: 'integer' },
        tilesSkipped: { type: 'integer' },
        tilesFailed: { type: 'integer' },
        tilesPerSecond: { type: 'number' },
        etaSeconds: { type: 'number' },
      },
    },
    width: { type: 'integer' },
    height: { type: 'integer' },
    tiling: { type: 'object', properties: { tileSize: { type: 'integer' }, overlap: { type: 'integer' }, columns: { type: 'integer' }, rows: { type: 'integer' } } },
    georeference: { type: 'object', description: '`georeferenced` with the EPSG code, or `none` (results in scene pixel coordinates).' },
    links: { type: 'object', properties: { self: { type: 'string' }, preview: { type: 'string' }, geojson: { type: 'string' } } },
    result: {
      type: 'object',
      description:
        'When done: `caption` (fused from the tile captions: sentences said by the most tiles, in caption order), `classification` (a grid of tile labels), `grounding.boxes` (merged across tile borders), `segmentation.mask` (mosaicked label PNG, per-class areas), `geojson` (RFC 7946, EPSG:4326) and `nativeCrs` (the same in the scene’s CRS), `tiles` counts and `failures`.',
    },
  },
};

/** `POST /v1/scenes`, `GET|DELETE /v1/scenes/{id}`, its GeoJSON and preview: whole scenes, tiled through the mesh. */
export function scenePaths(config: GatewayConfig): PathsObject {
  return {
    '/v1/scenes': {
      post: {
        operationId: 'submitScene',
        summary: 'A whole GeoTIFF / COG scene, tiled through the mesh at bulk priority and stitched into one georeferenced answer',
        description: `The file is streamed to the scene store (at most ${config.MAX_SCENE_BYTES} bytes, ${config.MAX_SCENE_PIXELS} pixels) and checked (TIFF structure, compression, CRS, bands) before any tile is queued. With API keys, the daily quota counts one image per tile: every tile is reserved at submission (429 quota_exceeded when they do not fit) and the tiles never processed (nodata, failed, cancelled) are given back when the scene ends.`,
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                required: ['scene'],
                properties: {
                  scene: { type: 'string', format: 'binary', description: 'GeoTIFF or COG (plain TIFF: pixel coordinates).' },
                  tasks: { type: 'string', description: 'Comma-separated: caption, classification, grounding, segmentation.', example: 'caption,segmentation' },
                  phrases: { type: 'string', description: 'Grounding: comma-separated phrases.' },
                  classes: { type: 'string', description: 'Segmentation: comma-separated classes (default: the pack’s).' },
                  tileSize: { type: 'integer', description: 'Tile side in pixels (default: the pack’s model input size).' },
                  overlap: { type: 'integer', description: 'Pixels shared by neighbouring tiles (default: tileSize / 8).' },
                  bands: { type: 'string', description: '0-based band indices read as R,G,B (e.g. 3,2,1).' },
                },
              },
            },
            'image/tiff': { schema: { type: 'string', format: 'binary', description: 'The raw file; the fields as query parameters.' } },
          },
        },
        responses: {
          202: { description: 'Accepted: `Location` is the scene’s URL.', content: { 'application/json': { schema: sceneStatus } } },
          400: errorResponse('missing_field, invalid_field (tasks, phrases, classes, tileSize, overlap, bands)'),
          413: errorResponse('scene_too_large (MAX_SCENE_BYTES)'),
          415: errorResponse('not a TIFF'),
          422: errorResponse('invalid_scene (truncated or corrupt), unsupported compression or samples, a CRS that cannot be read, a band that does not exist, too many pixels'),
        },
      },
    },
    '/v1/scenes/{id}': {
      get: {
        operationId: 'getScene',
        summary: 'A scene’s status and progress (tiles done of total, ETA); its result once done',
        parameters: [sceneId],
        responses: { 200: { description: 'The scene (`Retry-After: 1` while it runs).', content: { 'application/json': { schema: sceneStatus } } }, 404: errorResponse('scene_not_found') },
      },
      delete: {
        operationId: 'deleteScene',
        summary: 'Cancel a running scene (its queued tile jobs are freed), or erase a finished one',
        parameters: [sceneId],
        responses: { 202: { description: 'Cancelled.' }, 204: { description: 'Erased.' }, 404: errorResponse('scene_not_found') },
      },
    },
    '/v1/scenes/{id}/geojson': {
      get: {
        operationId: 'getSceneGeoJson',
        summary: 'The result as one GeoJSON FeatureCollection (EPSG:4326), what QGIS opens',
        parameters: [sceneId],
        responses: { 200: { description: 'application/geo+json' }, 404: errorResponse('scene_not_found'), 409: errorResponse('scene_not_done') },
      },
    },
    '/v1/scenes/{id}/preview.png': {
      get: {
        operationId: 'getScenePreview',
        summary: 'A downsampled preview of the scene with the result drawn over it',
        parameters: [sceneId],
        responses: { 200: { description: 'image/png' }, 404: errorResponse('scene_not_found'), 409: errorResponse('scene_not_done') },
      },
    },
  };
}
