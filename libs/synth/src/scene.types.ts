export type Point = readonly [number, number];
/** [x1, y1, x2, y2] in pixels, x2/y2 exclusive, always inside the image. */
export type Box = readonly [number, number, number, number];

export const SCENE_CLASSES = [
  'dense_residential',
  'sparse_residential',
  'farmland',
  'forest',
  'river',
  'lake',
  'beach',
  'parking_lot',
  'airport',
  'industrial',
  'meadow',
  'bare_land',
] as const;
export type SceneClass = (typeof SCENE_CLASSES)[number];

export const OBJECT_CLASSES = [
  'sea',
  'lake',
  'river',
  'runway',
  'road',
  'field',
  'pond',
  'building',
  'storage_tank',
  'airplane',
  'boat',
  'tree',
  'car',
] as const;
export type ObjectClass = (typeof OBJECT_CLASSES)[number];

export const COLOUR_NAMES = [
  'red',
  'grey',
  'dark grey',
  'white',
  'brown',
  'blue',
  'dark blue',
  'green',
  'dark green',
  'light green',
  'yellow',
  'black',
  'silver',
  'orange',
] as const;
export type ColourName = (typeof COLOUR_NAMES)[number];

export interface SceneObject {
  /** Index in `Scene.objects`. */
  id: number;
  class: ObjectClass;
  box: Box;
  /** Outline in pixels, clipped to the image. */
  polygon: Point[];
  colour: ColourName;
  /** Centre line of linear features (road, river, runway), in pixels, possibly running past the image edge. */
  line?: Point[];
  /** Free-form facts: roof type, heading in radians, height in pixels, ... */
  attributes: Record<string, string | number | boolean>;
}

export interface Scene {
  seed: number;
  sceneClass: SceneClass;
  width: number;
  height: number;
  /** Ground sample distance in metres per pixel (the scene is 64 m across at any size). */
  metresPerPixel: number;
  /** RGB interleaved, row-major, width × height × 3 bytes. */
  rgb: Uint8Array;
  objects: SceneObject[];
}

export interface GenerateSceneOptions {
  seed: number;
  /** Width and height in pixels; default 128. */
  size?: number;
  /** Default: drawn from the seed. */
  sceneClass?: SceneClass;
}
