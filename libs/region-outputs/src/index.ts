export type { NormBox, PercentBox, PixelBox } from './box.types';
export { encodeBoxesText, parseBoxesText } from './box-text';
export type { BoxesParse, EncodeBoxesOptions } from './box-text';
export { boxNorm, boxPercentFromNorm, boxPercentFromPx, boxPx } from './box-convert';
export { assertImageSize } from './image-size';
export type { ImageSize } from './image-size';
export { assertLabelMask, IGNORE_LABEL, resizeNearest } from './label-mask';
export type { LabelMask } from './label-mask';
export { decodeMaskText, encodeMaskText, MAX_MASK_GRID_CELLS, parseMaskText } from './mask-text';
export type { MaskDecode, MaskGridParse } from './mask-text';
export { decodeCocoRle, encodeCocoRle } from './coco-rle';
export type { CocoRle } from './coco-rle';
export { classAreaFractions } from './class-areas';
export type { ClassArea } from './class-areas';
export { encodeLabelMaskPng } from './mask-png';
export type { Unparseable } from './unparseable';
export {
  InvalidBoxError,
  InvalidClassListError,
  InvalidCocoRleError,
  InvalidImageSizeError,
  InvalidMaskShapeError,
  LabelOutOfRangeError,
  RegionOutputError,
} from './errors';
