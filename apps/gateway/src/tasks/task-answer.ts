import type { InferenceResultJson, LabelGridJson, PercentBoxJson } from '@rsmoe/contracts';
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
};

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

/** The HTTP answer of a task result; `size` is the (first) image's. Captions and answers pass through. */
export async function renderTaskAnswer(result: InferenceResultJson, size: ImageSize): Promise<InferenceResultJson | TaskAnswer> {
  if (result.task === 'caption' || result.task === 'vqa') return result;
  const { boxes, box, mask, ...rest } = result;
  const answer: TaskAnswer = { ...rest };
  if (boxes !== undefined) answer.boxes = boxes.map((found) => boxAnswer(found, size, result.query));
  if (box !== undefined) answer.box = boxAnswer(box, size);
  if (mask !== undefined) {
    answer.mask = await maskAnswer(mask, size);
    if (result.task === 'change') answer.changedFraction = answer.mask.classes.find((entry) => entry.name === 'changed')?.areaFraction ?? 0;
  }
  return answer;
}
