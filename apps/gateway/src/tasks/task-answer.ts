import type { InferenceResultJson, LabelGridJson, PercentBoxJson } from '@rsmoe/contracts';
import { boxesToFeatureCollection, maskToFeatureCollection, readGeoreference, type Georeference, type GeoreferenceReading } from '@rsmoe/geo';
import type { FeatureCollection, Geometry } from 'geojson';
import {
  boxNorm,
  boxPx,
  classAreaFractions,
  encodeCocoRle,
  encodeLabelMaskPng,
  resizeNearest,
  type CocoRle,
  type ImageSize,
  type LabelMask,
} from '@rsmoe/region-outputs';

/** A box of an answer, in pixels (continuous coordinates) and in [0, 1] of the image. */
export interface BoxAnswer {
  /** Grounding: the phrase the box was found for. */
  phrase?: string;
  boxPx: [number, number, number, number];
  boxNorm: [number, number, number, number];
}

/** One class of a mask answer. */
export interface MaskClassAnswer {
  /** Its pixel value in the PNG. */
  index: number;
  name: string;
  /** Its pixels ÷ the image's pixels. */
  areaFraction: number;
  /** Its binary mask as COCO compressed RLE (pycocotools' column-major form: `mask.decode` reads it). */
  rle: CocoRle;
}

/** A mask answer at the image's size. */
export interface MaskAnswer {
  width: number;
  height: number;
  /** Single-channel 8-bit PNG, base64: pixel = index into `classes` (255 = ignore). */
  png: string;
  classes: MaskClassAnswer[];
}

/**
 * What the HTTP API answers for RSUniVLM's tasks: the result, with boxes in pixels and [0, 1] instead of
 * percent, and the expert's mask grid rendered at the image's size (PNG, per-class RLE and areas).
 */
export type TaskAnswer = Omit<InferenceResultJson, 'boxes' | 'box' | 'mask'> & {
  boxes?: BoxAnswer[];
  box?: BoxAnswer;
  mask?: MaskAnswer;
  /** Change with a mask: the changed pixels ÷ all pixels. */
  changedFraction?: number;
  /**
   * A georeferenced GeoTIFF's boxes or mask polygons as RFC 7946 GeoJSON (EPSG:4326, lon/lat), next to the
   * same geometry in the file's own CRS.
   */
  geojson?: FeatureCollection<Geometry | null>;
  nativeCrs?: { epsg: number; featureCollection: FeatureCollection<Geometry | null> };
  /** Why a GeoTIFF's answer has no GeoJSON (a CRS or a georeferencing this gateway cannot map). */
  georeference?: { status: 'unsupported'; reason: string; message: string };
};

/** The image an answer is about: its size, and its bytes when they may be a GeoTIFF. */
export interface AnsweredImage {
  width: number;
  height: number;
  /** Set for TIFF input: read for a georeference. */
  tiff?: Uint8Array;
}

function corners(box: { x1: number; y1: number; x2: number; y2: number }): [number, number, number, number] {
  return [box.x1, box.y1, box.x2, box.y2];
}

function boxAnswer(box: PercentBoxJson, size: ImageSize, phrase?: string): BoxAnswer {
  const percent = { unit: 'percent' as const, ...box };
  return { ...(phrase !== undefined ? { phrase } : {}), boxPx: corners(boxPx(percent, size)), boxNorm: corners(boxNorm(percent)) };
}

/** The expert's grid resized (nearest neighbour) to the image, as PNG with each class's RLE and area. */
async function maskAnswer(grid: LabelGridJson, size: ImageSize): Promise<MaskAnswer> {
  const cells: LabelMask = { width: grid.width, height: grid.height, data: new Uint8Array(Buffer.from(grid.labels, 'base64')) };
  const mask = resizeNearest(cells, size);
  const areas = classAreaFractions(mask, grid.classes);
  const classes = grid.classes.map((name, index): MaskClassAnswer => {
    const binary = new Uint8Array(mask.data.length);
    for (let i = 0; i < binary.length; i++) binary[i] = mask.data[i] === index ? 1 : 0;
    return { index, name, areaFraction: areas[index].pixels / (size.width * size.height), rle: encodeCocoRle(binary, size.width, size.height) };
  });
  return { width: size.width, height: size.height, png: (await encodeLabelMaskPng(mask)).toString('base64'), classes };
}

/** Grounding boxes or a segmentation mask of a georeferenced image, as GeoJSON in EPSG:4326 and in its own CRS. */
function geoFields(result: InferenceResultJson, answer: TaskAnswer, georeference: Georeference): Pick<TaskAnswer, 'geojson' | 'nativeCrs'> {
  if (result.task === 'grounding' && answer.boxes !== undefined) {
    const boxes = answer.boxes.map(({ boxPx: [x1, y1, x2, y2] }) => ({ unit: 'px' as const, x1, y1, x2, y2 }));
    const collections = boxesToFeatureCollection(boxes, georeference, answer.boxes.map((found) => ({ phrase: found.phrase ?? null })));
    return { geojson: collections.wgs84, nativeCrs: collections.nativeCrs };
  }
  if (result.task === 'segmentation' && result.mask !== undefined) {
    // The grid the expert wrote, stretched over the image: the same outlines as the resized mask, far cheaper.
    const grid = { width: result.mask.width, height: result.mask.height, data: new Uint8Array(Buffer.from(result.mask.labels, 'base64')) };
    const collections = maskToFeatureCollection(grid, result.mask.classes, georeference);
    return { geojson: collections.wgs84, nativeCrs: collections.nativeCrs };
  }
  return {};
}

/** Tasks whose answer has geometry to georeference. */
const GEO_TASKS: readonly string[] = ['grounding', 'segmentation'];

/** The HTTP answer of a task result about `image` (the first one). Captions and answers pass through. */
export async function renderTaskAnswer(result: InferenceResultJson, image: AnsweredImage): Promise<InferenceResultJson | TaskAnswer> {
  if (result.task === 'caption' || result.task === 'vqa') return result;
  const size: ImageSize = { width: image.width, height: image.height };
  const { boxes, box, mask, ...rest } = result;
  const answer: TaskAnswer = { ...rest };
  if (boxes !== undefined) answer.boxes = boxes.map((found) => boxAnswer(found, size, result.query));
  if (box !== undefined) answer.box = boxAnswer(box, size);
  if (mask !== undefined) {
    answer.mask = await maskAnswer(mask, size);
    if (result.task === 'change') answer.changedFraction = answer.mask.classes.find((entry) => entry.name === 'changed')?.areaFraction ?? 0;
  }
  if (image.tiff !== undefined && GEO_TASKS.includes(result.task)) {
    const reading: GeoreferenceReading | undefined = await readGeoreference(image.tiff);
    if (reading?.kind === 'georeferenced') Object.assign(answer, geoFields(result, answer, reading));
    else if (reading?.kind === 'unsupported') answer.georeference = { status: 'unsupported', reason: reading.reason, message: reading.message };
  }
  return answer;
}
