export { generateScene, InvalidSceneOptionsError } from './scene-generator';
export { describeScene, areaBucket, classArea, positionName, NOUNS, SCENE_NAMES, URBAN_SCENES, VQA_TYPES } from './scene-describer';
export type { SceneDescription, VqaPair, VqaType } from './scene-describer';
export { computeRelations, RELATION_PREDICATES } from './relations';
export type { Relation, RelationPredicate } from './relations';
export { encodePng } from './png-encoder';
export { Random } from './random';
export { COLOUR_NAMES, OBJECT_CLASSES, SCENE_CLASSES } from './scene.types';
export type { Box, ColourName, GenerateSceneOptions, ObjectClass, Point, Scene, SceneClass, SceneObject } from './scene.types';
export { generateChangePair } from './change-pair';
export { objectClassMap, changedPixelMap } from './label-maps';
export type { ChangeKind, ChangePair, ChangePairOptions } from './change-pair';
export type { ChangeableClass } from './scene-generator';
export {
  writeSyntheticDataset,
  assignSplits,
  imageSeed,
  sceneClassOf,
  InvalidDatasetOptionsError,
  RSVQA_TYPE_NAMES,
  SPLIT_NAMES,
  SYNTH_FILES,
} from './dataset-writer';
export type { SplitFractions, SplitName, SynthProgress, SyntheticDatasetSummary, WriteSyntheticDatasetOptions } from './dataset-writer';
