import type { ChangePair } from './change-pair';
import { scanPolygon } from './geometry';
import { OBJECT_CLASSES, type Point, type Scene } from './scene.types';

/** Sets `value` on every pixel of a width × height row-major map whose centre lies inside the polygon. */
function fillPolygon(map: Uint8Array, width: number, height: number, polygon: readonly Point[], value: number): void {
  scanPolygon(polygon, width, height, (y, x0, x1) => map.fill(value, y * width + x0, y * width + x1 + 1));
}

/**
 * The segmentation truth of a scene: per pixel 1 + the `OBJECT_CLASSES` index of the topmost object whose
 * polygon covers the pixel's centre, 0 where none does (row-major, width × height).
 */
export function objectClassMap(scene: Scene): Uint8Array {
  const map = new Uint8Array(scene.width * scene.height);
  for (const object of scene.objects) fillPolygon(map, scene.width, scene.height, object.polygon, OBJECT_CLASSES.indexOf(object.class) + 1);
  return map;
}

/** The change-detection truth of a pair: 1 on the pixels of an added or removed object, else 0. */
export function changedPixelMap(pair: ChangePair): Uint8Array {
  const holder = pair.change.kind === 'removed' ? pair.before : pair.after;
  const map = new Uint8Array(holder.width * holder.height);
  for (const id of pair.change.objectIds) fillPolygon(map, holder.width, holder.height, holder.objects[id].polygon, 1);
  return map;
}
