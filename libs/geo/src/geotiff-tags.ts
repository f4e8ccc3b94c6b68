import { isUsableAffine, shiftAffine, type AffineTransform } from './affine';
import { crsDefinition, SUPPORTED_CRS_SUMMARY, type SupportedCrs } from './crs-catalogue';
import { checkFootprint } from './footprint';
import {
  unsupportedGeoreference,
  type Georeference,
  type GeoreferenceReading,
  type RasterType,
  type UnsupportedGeoreference,
} from './georeference';

/** The tags of a TIFF's first image that place it on the Earth, as geotiff reads them. */
export interface GeoTiffTags {
  width: number;
  height: number;
  /** TIFF Orientation (274); absent means 1 (rows top to bottom, columns left to right). */
  orientation?: number;
  /** ModelTiepointTag (33922): (I, J, K, X, Y, Z) per tie point. */
  modelTiepoint?: ArrayLike<number>;
  /** ModelPixelScaleTag (33550): (ScaleX, ScaleY, ScaleZ). */
  modelPixelScale?: ArrayLike<number>;
  /** ModelTransformationTag (34264): a 4 × 4 matrix, row-major. */
  modelTransformation?: ArrayLike<number>;
  /** The GeoKeyDirectory, keys by name (geotiff's getGeoKeys()); null or absent when there is none. */
  geoKeys?: Readonly<Record<string, unknown>> | null;
}

const USER_DEFINED = 32767;
const MODEL_PROJECTED = 1;
const MODEL_GEOCENTRIC = 3;
const RASTER_PIXEL_IS_POINT = 2;

/**
 * Decides what a TIFF's tags say about where it lies: undefined when it carries no georeferencing at all (no
 * transform tag and no geo key), else a Georeference, or an UnsupportedGeoreference saying why not.
 *
 * The transform is read as GDAL reads it: one tie point with a pixel scale, else a ModelTransformation; several
 * tie points are ground control points. The CRS is ProjectedCSTypeGeoKey, else GeographicTypeGeoKey (unless the
 * model type says projected: then the projection is user-defined).
 */
export function georeferenceFromTags(tags: GeoTiffTags): GeoreferenceReading | undefined {
  const geoKeys = tags.geoKeys ?? {};
  const hasTransformTags = [tags.modelTiepoint, tags.modelPixelScale, tags.modelTransformation].some((tag) => tag !== undefined);
  if (!hasTransformTags && Object.keys(geoKeys).length === 0) return undefined;

  if (tags.orientation !== undefined && tags.orientation !== 1) {
    return unsupportedGeoreference('tiff-orientation', `the TIFF has Orientation ${tags.orientation}, not 1`);
  }
  const transform = transformFromTags(tags);
  if ('kind' in transform) return transform;
  const crs = crsFromGeoKeys(geoKeys);
  if ('kind' in crs) return crs;

  const rasterType: RasterType = numberKey(geoKeys.GTRasterTypeGeoKey) === RASTER_PIXEL_IS_POINT ? 'pixel-is-point' : 'pixel-is-area';
  const georeference: Georeference = {
    kind: 'georeferenced',
    width: tags.width,
    height: tags.height,
    // Pixel-is-point places the centre of pixel (0, 0), which is (0.5, 0.5) in continuous pixel coordinates.
    transform: rasterType === 'pixel-is-point' ? shiftAffine(transform, -0.5, -0.5) : transform,
    crs,
    rasterType,
  };
  return checkFootprint(georeference) ?? georeference;
}

function transformFromTags(tags: GeoTiffTags): AffineTransform | UnsupportedGeoreference {
  const tiepoints = tags.modelTiepoint;
  const scale = tags.modelPixelScale;
  const matrix = tags.modelTransformation;
  let transform: AffineTransform;
  if (tiepoints?.length === 6 && scale !== undefined && scale.length >= 2) {
    const [i, j, , x, y] = Array.from(tiepoints);
    const [sx, sy] = [scale[0], scale[1]];
    // Raster row numbers grow downwards and model y upwards: ScaleY is positive for a north-up image.
    transform = { a: sx, b: 0, c: x - i * sx, d: 0, e: -sy, f: y + j * sy };
  } else if (matrix !== undefined) {
    if (matrix.length !== 16) {
      return unsupportedGeoreference('invalid-transform', `ModelTransformation has ${matrix.length} values, not 16`);
    }
    transform = { a: matrix[0], b: matrix[1], c: matrix[3], d: matrix[4], e: matrix[5], f: matrix[7] };
  } else if (tiepoints !== undefined && tiepoints.length > 6) {
    return unsupportedGeoreference(
      'ground-control-points',
      `${Math.floor(tiepoints.length / 6)} tie points and no ModelTransformation: a warp, not an affine transform`,
    );
  } else if (tiepoints === undefined && scale === undefined) {
    return unsupportedGeoreference('no-transform', 'geo keys but no ModelTiepoint, ModelPixelScale or ModelTransformation');
  } else {
    return unsupportedGeoreference(
      'invalid-transform',
      `ModelTiepoint with ${tiepoints?.length ?? 0} values and ModelPixelScale with ${scale?.length ?? 0}: need 6 and 3`,
    );
  }
  if (!isUsableAffine(transform)) {
    return unsupportedGeoreference('invalid-transform', `the pixel → model transform is not finite or is singular`);
  }
  return transform;
}

function crsFromGeoKeys(geoKeys: Readonly<Record<string, unknown>>): SupportedCrs | UnsupportedGeoreference {
  const model = numberKey(geoKeys.GTModelTypeGeoKey);
  const projected = numberKey(geoKeys.ProjectedCSTypeGeoKey);
  const geographic = numberKey(geoKeys.GeographicTypeGeoKey);
  if (model === MODEL_GEOCENTRIC) return unsupportedGeoreference('unsupported-crs', 'a geocentric model (GTModelTypeGeoKey 3)');
  let code: number;
  if (projected !== undefined) code = projected;
  else if (model === MODEL_PROJECTED) {
    return unsupportedGeoreference('user-defined-crs', 'a projected model with no ProjectedCSTypeGeoKey: a user-defined projection');
  } else if (geographic !== undefined) code = geographic;
  else return unsupportedGeoreference('no-crs', 'no ProjectedCSTypeGeoKey or GeographicTypeGeoKey');

  if (code === USER_DEFINED) {
    return unsupportedGeoreference('user-defined-crs', 'the CRS is user-defined (32767), not an EPSG code', code);
  }
  const definition = crsDefinition(code);
  if (definition === undefined) {
    return unsupportedGeoreference('unsupported-crs', `EPSG:${code} is not supported; supported: ${SUPPORTED_CRS_SUMMARY}`, code);
  }
  return { epsg: definition.epsg, name: definition.name };
}

/** A SHORT geo key's value: geotiff gives a number, or a one-value array when it is kept in a params tag. */
function numberKey(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (isArrayLike(value) && value.length === 1 && typeof value[0] === 'number') return value[0];
  return undefined;
}

function isArrayLike(value: unknown): value is ArrayLike<unknown> {
  return Array.isArray(value) || ArrayBuffer.isView(value);
}
