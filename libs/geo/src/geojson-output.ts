import type { FeatureCollection, GeoJsonProperties, Geometry } from 'geojson';

/**
 * The same features twice: in WGS 84 as RFC 7946 wants them, and in the image's own CRS for GIS work that keeps
 * metres (RFC 7946 dropped the `crs` member, so the code travels beside the collection).
 */
export interface GeoFeatureCollections<G extends Geometry | null, P extends GeoJsonProperties> {
  /** [longitude, latitude] in degrees; exteriors counter-clockwise, holes clockwise, rings closed. */
  wgs84: FeatureCollection<G, P>;
  nativeCrs: {
    /** The CRS of the coordinates: the georeference's EPSG code. */
    epsg: number;
    /**
     * Coordinates as the GeoTIFF's model space has them: (easting, northing) in metres for projected CRSs,
     * (longitude, latitude) in degrees for EPSG:4326. Rings oriented as in `wgs84`, with x east and y north.
     */
    featureCollection: FeatureCollection<G, P>;
  };
}

/** The properties of a label mask's feature: one feature per class present. */
export interface MaskClassProperties {
  /** The class name, as in the class list. */
  class: string;
  /** The class index: the label value in the mask. */
  index: number;
}
