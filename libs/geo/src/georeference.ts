import type { AffineTransform } from './affine';
import type { SupportedCrs } from './crs-catalogue';

/**
 * How a GeoTIFF's raster space meets its model space (GTRasterTypeGeoKey). `pixel-is-area` (1, the default
 * when the key is absent): a tie point or transform places the top-left *corner* of the top-left pixel.
 * `pixel-is-point` (2): it places that pixel's *centre*. Georeference.transform already accounts for it.
 */
export type RasterType = 'pixel-is-area' | 'pixel-is-point';

/** A georeferenced image this library can turn into GeoJSON. */
export interface Georeference {
  kind: 'georeferenced';
  /** The image's width in pixels (the first image of the TIFF). */
  width: number;
  /** The image's height in pixels. */
  height: number;
  /**
   * Continuous pixel coordinates (0, 0 = top-left corner of the image) → the CRS's coordinates, with the
   * half-pixel shift of `pixel-is-point` already applied (as GDAL does), so a pixel's corner maps to its corner
   * on the ground whatever the raster type.
   */
  transform: AffineTransform;
  /** The CRS of the transform's output (ProjectedCSTypeGeoKey, else GeographicTypeGeoKey). */
  crs: SupportedCrs;
  rasterType: RasterType;
}

/** Why a TIFF that carries georeferencing cannot be turned into GeoJSON. */
export const UNSUPPORTED_GEOREFERENCE_REASONS = [
  /** The CRS is user-defined (code 32767, or a projected model with no ProjectedCSTypeGeoKey). */
  'user-defined-crs',
  /** The CRS is an EPSG code outside the catalogue (crs-catalogue.ts), or a geocentric model. */
  'unsupported-crs',
  /** A transform but no CRS geo key. */
  'no-crs',
  /** Geo keys but no ModelTiepoint + ModelPixelScale and no ModelTransformation. */
  'no-transform',
  /** Several tie points (ground control points): a warp, not an affine transform. */
  'ground-control-points',
  /** A malformed, zero, non-finite or singular transform. */
  'invalid-transform',
  /** A TIFF Orientation other than 1: the decoded image is turned, so its pixels are not the raster's. */
  'tiff-orientation',
  /** The image's footprint has no finite WGS 84 position or leaves longitude ±180 / latitude ±90. */
  'outside-wgs84',
  /** The image's footprint crosses the antimeridian, which RFC 7946 wants cut; this library does not cut. */
  'crosses-antimeridian',
  /** The bytes start like a TIFF but geotiff cannot read its tags. */
  'unreadable',
] as const;

export type UnsupportedGeoreferenceReason = (typeof UNSUPPORTED_GEOREFERENCE_REASONS)[number];

/** A TIFF that carries georeferencing this library cannot use: an expected outcome, so a value. */
export interface UnsupportedGeoreference {
  kind: 'unsupported';
  reason: UnsupportedGeoreferenceReason;
  /** The CRS code the TIFF names, where it names one. */
  epsg?: number;
  /** What is wrong, in words, for logs and API answers. */
  message: string;
}

/** What readGeoreference finds in a georeferenced TIFF. */
export type GeoreferenceReading = Georeference | UnsupportedGeoreference;

export function unsupportedGeoreference(
  reason: UnsupportedGeoreferenceReason,
  message: string,
  epsg?: number,
): UnsupportedGeoreference {
  return epsg === undefined ? { kind: 'unsupported', reason, message } : { kind: 'unsupported', reason, epsg, message };
}
