import sharp from 'sharp';
import { generateScene, objectClassMap, OBJECT_CLASSES, type ObjectClass } from '@rsmoe/synth';
import { writeTiledGeoTiff, type GeoPlacement } from '../../libs/scenes/test-support/tiled-geotiff';

/** A large synthetic scene: a grid of libs/synth scenes side by side, with its truth in scene pixels. */
export interface ComposedScene {
  width: number;
  height: number;
  /** RGB interleaved, row-major. */
  rgb: Uint8Array;
  /** Per pixel: 0 none, 1 + OBJECT_CLASSES index of the topmost object; 255 inside the nodata square. */
  truth: Uint8Array;
  /** Every object: class and box [x1, y1, x2, y2) in scene pixels. */
  objects: { class: ObjectClass; box: [number, number, number, number] }[];
  /** A square of nodata (value 0 in every band), bottom-right, or undefined. */
  nodata?: { x: number; y: number; size: number };
}

/**
 * `across` × `across` synthetic scenes of `cell` pixels (seeds from `seed`), each at the resolution the demo
 * pack was trained at (libs/synth's scene is 64 m across at any size), so a tile of the pack's input size sees
 * what the experts know. `nodataSize` > 0 blanks that square at the bottom-right corner (its objects dropped).
 */
export function composeSyntheticScene(across: number, cell: number, seed: number, nodataSize = 0): ComposedScene {
  const width = across * cell;
  const height = across * cell;
  const rgb = new Uint8Array(width * height * 3);
  const truth = new Uint8Array(width * height);
  const objects: ComposedScene['objects'] = [];
  const nodata = nodataSize > 0 ? { x: width - nodataSize, y: height - nodataSize, size: nodataSize } : undefined;
  for (let j = 0; j < across; j++) {
    for (let i = 0; i < across; i++) {
      const scene = generateScene({ seed: seed * 1000 + j * across + i, size: cell });
      const labels = objectClassMap(scene);
      for (let y = 0; y < cell; y++) {
        const to = ((j * cell + y) * width + i * cell) * 3;
        rgb.set(scene.rgb.subarray(y * cell * 3, (y + 1) * cell * 3), to);
        truth.set(labels.subarray(y * cell, (y + 1) * cell), (j * cell + y) * width + i * cell);
      }
      for (const object of scene.objects) {
        const [x1, y1, x2, y2] = object.box;
        objects.push({ class: object.class, box: [x1 + i * cell, y1 + j * cell, x2 + i * cell, y2 + j * cell] });
      }
    }
  }
  if (nodata) {
    for (let y = nodata.y; y < height; y++) {
      rgb.fill(0, (y * width + nodata.x) * 3, (y * width + width) * 3);
      truth.fill(255, y * width + nodata.x, y * width + width);
    }
  }
  const outside = (box: [number, number, number, number]) => !nodata || box[2] <= nodata.x || box[3] <= nodata.y;
  return { width, height, rgb, truth, objects: objects.filter((object) => outside(object.box)), ...(nodata ? { nodata } : {}) };
}

/** Writes the scene as a tiled, deflate GeoTIFF (a COG's layout), with GDAL_NODATA 0 when it has a nodata square. */
export function writeSceneTiff(path: string, scene: ComposedScene, geo?: GeoPlacement): void {
  writeTiledGeoTiff(path, {
    width: scene.width,
    height: scene.height,
    bands: 3,
    compression: 'deflate',
    ...(geo ? { geo } : {}),
    ...(scene.nodata ? { nodata: 0 } : {}),
    pixels: (x0, y0, w, h) => cropRgb(scene, x0, y0, w, h),
  });
}

export function cropRgb(scene: Pick<ComposedScene, 'width' | 'rgb'>, x0: number, y0: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(scene.rgb.subarray(((y0 + y) * scene.width + x0) * 3, ((y0 + y) * scene.width + x0 + w) * 3), y * w * 3);
  return out;
}

export function cropPng(scene: ComposedScene, x0: number, y0: number, w: number, h: number): Promise<Buffer> {
  return sharp(cropRgb(scene, x0, y0, w, h), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

/** The segmentation classes of the truth map, index = label value. */
export const TRUTH_CLASSES = ['others', ...OBJECT_CLASSES];
