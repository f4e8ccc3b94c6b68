import { fromArrayBuffer, type GeoTIFFImage } from 'geotiff';
import { unsupportedGeoreference, type GeoreferenceReading } from './georeference';
import { georeferenceFromTags, type GeoTiffTags } from './geotiff-tags';

/**
 * Where a GeoTIFF lies: its first image's pixel → CRS transform and CRS (see georeferenceFromTags for the
 * rules). undefined for bytes that are not a TIFF (PNG, JPEG, WebP…) and for a TIFF with no georeferencing;
 * an UnsupportedGeoreference, never an exception, for a georeferenced TIFF this library cannot use or a TIFF
 * whose tags geotiff cannot read, so that a caller can answer the rest and say why GeoJSON is missing.
 */
export async function readGeoreference(bytes: Uint8Array): Promise<GeoreferenceReading | undefined> {
  if (!isTiff(bytes)) return undefined;
  let tags: GeoTiffTags;
  try {
    tags = await readGeoTiffTags(bytes);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return unsupportedGeoreference('unreadable', `geotiff cannot read the TIFF's tags: ${message}`);
  }
  return georeferenceFromTags(tags);
}

/** Classic TIFF ("II*\0", "MM\0*") and BigTIFF ("II+\0", "MM\0+"). */
function isTiff(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false;
  const [b0, b1, b2, b3] = bytes;
  if (b0 === 0x49 && b1 === 0x49) return (b2 === 42 || b2 === 43) && b3 === 0;
  if (b0 === 0x4d && b1 === 0x4d) return b2 === 0 && (b3 === 42 || b3 === 43);
  return false;
}

/**
 * readGeoreference for a TIFF image geotiff already opened (e.g. a scene read from disk with `fromFile`, never
 * held whole): undefined for an image with no georeferencing, an UnsupportedGeoreference for one this library
 * cannot use (including tags it cannot read).
 */
export async function readGeoreferenceOfImage(image: GeoTIFFImage): Promise<GeoreferenceReading | undefined> {
  let tags: GeoTiffTags;
  try {
    tags = await tagsOfImage(image);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return unsupportedGeoreference('unreadable', `geotiff cannot read the TIFF's tags: ${message}`);
  }
  return georeferenceFromTags(tags);
}

async function readGeoTiffTags(bytes: Uint8Array): Promise<GeoTiffTags> {
  // A copy: geotiff needs a whole ArrayBuffer, and `bytes` may be a view into a larger (pooled) one.
  const tiff = await fromArrayBuffer(new Uint8Array(bytes).buffer);
  // geotiff parses only the first IFD here; the geo tags are read eagerly with it, the pixels never.
  return tagsOfImage(await tiff.getImage(0));
}

async function tagsOfImage(image: GeoTIFFImage): Promise<GeoTiffTags> {
  const directory = image.getFileDirectory();
  return {
    width: image.getWidth(),
    height: image.getHeight(),
    orientation: await directory.loadValue('Orientation'),
    modelTiepoint: await directory.loadValue('ModelTiepoint'),
    modelPixelScale: await directory.loadValue('ModelPixelScale'),
    modelTransformation: await directory.loadValue('ModelTransformation'),
    geoKeys: image.getGeoKeys(),
  };
}
