export { readGeoreference, readGeoreferenceOfImage } from './read-georeference';
export { applyAffine } from './affine';
export { UNSUPPORTED_GEOREFERENCE_REASONS } from './georeference';
export type {
  Georeference,
  GeoreferenceReading,
  RasterType,
  UnsupportedGeoreference,
  UnsupportedGeoreferenceReason,
} from './georeference';
export type { AffineTransform } from './affine';
export { SUPPORTED_CRS_SUMMARY } from './crs-catalogue';
export type { SupportedCrs } from './crs-catalogue';
export { boxesToFeatureCollection } from './box-features';
export { maskToFeatureCollection, maskToPixelPolygons } from './mask-features';
export type { GeoFeatureCollections, MaskClassProperties } from './geojson-output';
export { GeoError, InvalidPixelBoxError, PropertiesCountError, ReprojectionError, UnsupportedCrsError } from './errors';
