/**
 * Typed errors of the VLM runtime. Every error carries a stable `code` so that services can map it to a
 * status (HTTP 4xx for input errors, UnrecoverableError in workers) without matching on messages.
 */
export abstract class RuntimeError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A problem with the caller's input (image bytes, prompt, options): permanent, never worth a retry. */
export abstract class RuntimeInputError extends RuntimeError {}

/** Zero bytes were given where an image was expected. */
export class EmptyImageError extends RuntimeInputError {
  readonly code = 'image_empty';
}

/** The bytes are not one of the supported formats (PNG, JPEG, WebP, TIFF/GeoTIFF). */
export class UnsupportedImageFormatError extends RuntimeInputError {
  readonly code = 'image_unsupported_format';
}

/** The bytes look like a supported format but could not be decoded (truncated, corrupt). */
export class ImageDecodeError extends RuntimeInputError {
  readonly code = 'image_undecodable';
}

/** The encoded image is larger than the configured byte limit. */
export class ImageTooLargeError extends RuntimeInputError {
  readonly code = 'image_too_large';
}

/** The image has more pixels (width × height) than the configured limit; checked before decoding. */
export class TooManyPixelsError extends RuntimeInputError {
  readonly code = 'image_too_many_pixels';
}

/** Invalid generation options or prompt (e.g. a prompt longer than the model's context). */
export class InvalidGenerationRequestError extends RuntimeInputError {
  readonly code = 'invalid_generation_request';
}

/** A model directory is incomplete or malformed: a missing file, bad JSON, a missing field. */
export class ModelFileError extends RuntimeError {
  readonly code = 'model_file_invalid';
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
  }
}

/** An ONNX session does not have the inputs/outputs (names, ranks, types) the model layout requires. */
export class ModelSignatureError extends RuntimeError {
  readonly code = 'model_signature_mismatch';
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/** The requested execution provider could not be initialised (e.g. `cuda` without CUDA libraries). */
export class ExecutionProviderError extends RuntimeError {
  readonly code = 'execution_provider_unavailable';
}
