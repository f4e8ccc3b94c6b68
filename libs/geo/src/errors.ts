/**
 * Errors for what callers pass in (boxes, property lists, hand-made georeferences). What a GeoTIFF holds never
 * throws: a georeference this library cannot use is an `UnsupportedGeoreference` outcome (georeference.ts).
 */
export abstract class GeoError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A pixel box has a corner that is not a finite number. */
export class InvalidPixelBoxError extends GeoError {}

/** The property list does not hold one entry per box. */
export class PropertiesCountError extends GeoError {
  constructor(
    readonly boxes: number,
    readonly properties: number,
  ) {
    super(`${boxes} boxes need ${boxes} property objects, got ${properties}`);
  }
}

/** A georeference names a CRS this library cannot reproject (readGeoreference never returns one). */
export class UnsupportedCrsError extends GeoError {
  constructor(readonly epsg: number) {
    super(`EPSG:${epsg} is not a CRS this library reprojects`);
  }
}

/** A position has no finite WGS 84 equivalent (it lies outside its CRS's domain). */
export class ReprojectionError extends GeoError {
  constructor(
    readonly epsg: number,
    readonly position: readonly number[],
  ) {
    super(`EPSG:${epsg} position [${position.join(', ')}] has no finite WGS 84 equivalent`);
  }
}
