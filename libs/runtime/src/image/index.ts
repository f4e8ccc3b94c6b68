export {
  imageFormatLabel,
  sniffImageFormat,
  sniffUnsupportedImageFormat,
  type SupportedImageFormat,
  type UnsupportedImageFormat,
} from './image-format';
export {
  decodeImage,
  DEFAULT_IMAGE_LIMITS,
  MAX_STRETCH_SAMPLES,
  type DecodedImage,
  type DecodeOptions,
  type ImageLimits,
} from './image-decoder';
export {
  ImagePreprocessor,
  parsePreprocessorConfig,
  resizeRgb,
  type RgbImage,
  stackPixelValues,
  type ImageSize,
  type PreprocessorConfig,
} from './image-preprocessor';
