/** Stable codes of a refused scene (the HTTP API's `error.code`). */
export const SCENE_ERROR_CODES = Object.freeze({
  /** 413: the upload is larger than MAX_SCENE_BYTES. */
  sceneTooLarge: 'scene_too_large',
  /** 422: width × height over MAX_SCENE_PIXELS. */
  tooManyPixels: 'too_many_pixels',
  /** 415: the file is not a TIFF. */
  notTiff: 'unsupported_media_type',
  /** 422: the TIFF is truncated or corrupt (its header, directory or tile index cannot be read). */
  invalidScene: 'invalid_scene',
  /** 422: a compression geotiff cannot decode (the message names the TIFF Compression code). */
  unsupportedCompression: 'unsupported_compression',
  /** 422: a sample layout the scene reader does not take (bit depth, sample format, planar layout). */
  unsupportedSampleFormat: 'unsupported_sample_format',
  /** 422: georeferencing that cannot be read or used (a user-defined or unknown CRS, ground control points…). */
  unsupportedGeoreference: 'unsupported_georeference',
  /** 422: a band index the scene does not have. */
  invalidBands: 'invalid_bands',
  /** 400: a task, phrase, class list, tile size or overlap that is not valid (the message names the field). */
  invalidField: 'invalid_field',
  /** 400: a required field is missing (the scene file, the tasks, grounding phrases). */
  missingField: 'missing_field',
} as const);

export type SceneErrorCode = (typeof SCENE_ERROR_CODES)[keyof typeof SCENE_ERROR_CODES];

/** A scene refused before any tile is queued: an HTTP status and a stable code. */
export class SceneInputError extends Error {
  override readonly name = 'SceneInputError';

  constructor(
    readonly status: 400 | 413 | 415 | 422,
    readonly code: SceneErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
