import { writeArrayBuffer, type GeotiffWriterMetadata } from 'geotiff';
import sharp from 'sharp';

/** The geo tags and keys a fixture GeoTIFF carries (geotiff's writer metadata names). */
export type GeoTags = Pick<
  GeotiffWriterMetadata,
  | 'ModelTiepoint'
  | 'ModelPixelScale'
  | 'ModelTransformation'
  | 'GTModelTypeGeoKey'
  | 'GTRasterTypeGeoKey'
  | 'GeographicTypeGeoKey'
  | 'ProjectedCSTypeGeoKey'
>;

/** A one-band 8-bit GeoTIFF of width × height pixels written by geotiff's own writer. */
export function geoTiff(width: number, height: number, tags: GeoTags): Uint8Array {
  // The writer fills in and deletes fields of the object it is given: a fresh one each time.
  const metadata: GeotiffWriterMetadata = { width, height, ...structuredClone(tags) };
  return new Uint8Array(writeArrayBuffer(new Uint8Array(width * height), metadata));
}

/** A plain TIFF, no geo tags (geotiff's writer always adds some, so sharp writes it). */
export async function plainTiff(width = 4, height = 3): Promise<Uint8Array> {
  return new Uint8Array(await blank(width, height).tiff().toBuffer());
}

export async function png(width = 4, height = 3): Promise<Uint8Array> {
  return new Uint8Array(await blank(width, height).png().toBuffer());
}

function blank(width: number, height: number) {
  return sharp({ create: { width, height, channels: 3, background: { r: 0, g: 0, b: 0 } } });
}
