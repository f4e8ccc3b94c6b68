export { SCENE_ERROR_CODES, SceneInputError } from './scene-errors';
export type { SceneErrorCode } from './scene-errors';
export { SCENE_TASK_NAMES } from './scene.types';
export type {
  RasterInfo,
  SceneProgress,
  SceneSpec,
  SceneStatus,
  SceneTaskName,
  SceneTasks,
  Tile,
  TileBox,
  TileFailure,
  TileGrid,
  TileMask,
  TileRecord,
} from './scene.types';
export { coreIndexOf, planTileGrid, tileAt, tileCount } from './tile-grid';
export { openSceneRaster, resolveBands } from './scene-raster';
export type { SceneLimits, SceneRaster } from './scene-raster';
export { MAX_SCENE_CLASSES, MAX_SCENE_PHRASES, SCENE_FIELD_NAMES, acceptScene, parseSceneTasks, scenePackDefaults } from './scene-request';
export type { SceneFields, ScenePackDefaults } from './scene-request';
export { BORDER_MARGIN_PX, MERGE_IOU, PIECE_IOS, iou, mergeTileBoxes, touchesInnerBorder } from './box-merge';
export type { MergedBox } from './box-merge';
export { MOSAIC_MAX_SIDE, mosaicMasks, mosaicScale } from './mask-mosaic';
export type { SceneMosaic } from './mask-mosaic';
export { SCENE_CAPTION_METHOD, fuseSceneCaption } from './caption-fusion';
export type { SceneCaption, SceneCaptionSentence } from './caption-fusion';
export { MAX_LISTED_FAILURES, PIXEL_COORDINATES_MESSAGE, stitchScene } from './scene-stitcher';
export type { SceneFeatureProperties, SceneResult, StitchedScene } from './scene-stitcher';
export { PREVIEW_MAX_SIDE, renderScenePreview } from './scene-preview';
export { SceneStateStore, TERMINAL_STATUSES, sceneProgress } from './scene-state.adapter';
export type { SceneState } from './scene-state.adapter';
export { DEFAULT_SCENE_STORE_SUBDIR, SCENE_SOURCE_FILE, SceneFileStore } from './scene-files.adapter';
export { SceneStoreSweeper } from './scene-store-sweeper';
