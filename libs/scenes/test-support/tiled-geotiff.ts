import { closeSync, openSync, writeSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

/** Where a written GeoTIFF lies: a north-up pixel-is-area transform in one EPSG code. */
export interface GeoPlacement {
  epsg: number;
  /** Map x of the image's top-left corner. */
  originX: number;
  /** Map y of the image's top-left corner. */
  originY: number;
  /** Map units per pixel (x); the y step is its negative. */
  pixelSize: number;
}

export interface TiledGeoTiffOptions {
  width: number;
  height: number;
  /** Bands per pixel, 8-bit unsigned (1, 3 or 4). */
  bands: number;
  /** Internal tile side (a multiple of 16). Default 256. */
  tileSide?: number;
  /** `none` (1), `deflate` (8), or a raw TIFF Compression code (e.g. 34712, JPEG 2000, which geotiff cannot read). */
  compression?: 'none' | 'deflate' | number;
  /** Georeferencing; absent: a plain TIFF. */
  geo?: GeoPlacement;
  /** GDAL_NODATA tag. */
  nodata?: number;
  /**
   * The pixels of one window (x0, y0, w, h), band-interleaved (w × h × bands bytes, row-major). Called once
   * per internal tile, so a scene far larger than memory is written without holding it.
   */
  pixels(x0: number, y0: number, w: number, h: number): Uint8Array;
}

const SHORT = 3;
const LONG = 4;
const DOUBLE = 12;
const ASCII = 2;

interface Entry {
  tag: number;
  type: number;
  values: number[] | string;
}

/**
 * Writes a tiled, 8-bit, chunky GeoTIFF (classic TIFF, little-endian) to `path`, one internal tile at a time:
 * header, tile data, then the arrays and the IFD at the end. Test and benchmark support: the scenes library's
 * reader must open what GDAL's COGs look like (tiled, deflate, geo keys) without the test holding the scene.
 */
export function writeTiledGeoTiff(path: string, options: TiledGeoTiffOptions): void {
  const { width, height, bands } = options;
  const side = options.tileSide ?? 256;
  const compression = options.compression === undefined || options.compression === 'none' ? 1 : options.compression === 'deflate' ? 8 : options.compression;
  const across = Math.ceil(width / side);
  const down = Math.ceil(height / side);
  const fd = openSync(path, 'w');
  try {
    let offset = 0;
    const write = (bytes: Uint8Array): number => {
      const at = offset;
      writeSync(fd, bytes, 0, bytes.length, at);
      offset += bytes.length;
      return at;
    };
    const header = Buffer.alloc(8);
    header.write('II', 0, 'latin1');
    header.writeUInt16LE(42, 2);
    write(header);
    const offsets: number[] = [];
    const counts: number[] = [];
    for (let ty = 0; ty < down; ty++) {
      for (let tx = 0; tx < across; tx++) {
        const x0 = tx * side;
        const y0 = ty * side;
        const w = Math.min(side, width - x0);
        const h = Math.min(side, height - y0);
        const window = options.pixels(x0, y0, w, h);
        // Edge tiles are padded to the full tile side, as TIFF wants.
        const tile = new Uint8Array(side * side * bands);
        for (let row = 0; row < h; row++) tile.set(window.subarray(row * w * bands, (row + 1) * w * bands), row * side * bands);
        const data = compression === 8 ? deflateSync(tile) : tile;
        offsets.push(write(data));
        counts.push(data.length);
      }
    }
    const entries: Entry[] = [
      { tag: 256, type: LONG, values: [width] },
      { tag: 257, type: LONG, values: [height] },
      { tag: 258, type: SHORT, values: Array.from({ length: bands }, () => 8) },
      { tag: 259, type: SHORT, values: [compression] },
      { tag: 262, type: SHORT, values: [bands >= 3 ? 2 : 1] },
      { tag: 277, type: SHORT, values: [bands] },
      { tag: 284, type: SHORT, values: [1] },
      { tag: 322, type: LONG, values: [side] },
      { tag: 323, type: LONG, values: [side] },
      { tag: 324, type: LONG, values: offsets },
      { tag: 325, type: LONG, values: counts },
      ...(bands === 4 ? [{ tag: 338, type: SHORT, values: [0] }] : []),
      { tag: 339, type: SHORT, values: Array.from({ length: bands }, () => 1) },
    ];
    if (options.geo) {
      const { epsg, originX, originY, pixelSize } = options.geo;
      const geographic = epsg === 4326;
      entries.push(
        { tag: 33550, type: DOUBLE, values: [pixelSize, pixelSize, 0] },
        { tag: 33922, type: DOUBLE, values: [0, 0, 0, originX, originY, 0] },
        // GeoKeyDirectory: version 1.1.0, 3 keys: model type, raster type (pixel is area), the CRS.
        { tag: 34735, type: SHORT, values: [1, 1, 0, 3, 1024, 0, 1, geographic ? 2 : 1, 1025, 0, 1, 1, geographic ? 2048 : 3072, 0, 1, epsg] },
      );
    }
    if (options.nodata !== undefined) entries.push({ tag: 42113, type: ASCII, values: `${options.nodata}\0` });
    entries.sort((a, b) => a.tag - b.tag);
    // Values longer than 4 bytes go before the IFD; the IFD points at them.
    const valueOffsets = entries.map((entry) => {
      const bytes = encodeValues(entry);
      if (bytes.length <= 4) return undefined;
      if (offset % 2 === 1) write(new Uint8Array(1));
      return write(bytes);
    });
    if (offset % 2 === 1) write(new Uint8Array(1));
    const ifd = Buffer.alloc(2 + entries.length * 12 + 4);
    ifd.writeUInt16LE(entries.length, 0);
    entries.forEach((entry, i) => {
      const at = 2 + i * 12;
      ifd.writeUInt16LE(entry.tag, at);
      ifd.writeUInt16LE(entry.type, at + 2);
      ifd.writeUInt32LE(typeof entry.values === 'string' ? entry.values.length : entry.values.length, at + 4);
      const external = valueOffsets[i];
      if (external !== undefined) ifd.writeUInt32LE(external, at + 8);
      else Buffer.from(encodeValues(entry)).copy(ifd, at + 8);
    });
    const ifdOffset = write(ifd);
    const pointer = Buffer.alloc(4);
    pointer.writeUInt32LE(ifdOffset, 0);
    writeSync(fd, pointer, 0, 4, 4);
  } finally {
    closeSync(fd);
  }
}

function encodeValues(entry: Entry): Uint8Array {
  if (typeof entry.values === 'string') return Buffer.from(entry.values, 'latin1');
  const size = entry.type === SHORT ? 2 : entry.type === LONG ? 4 : 8;
  const bytes = Buffer.alloc(entry.values.length * size);
  entry.values.forEach((value, i) => {
    if (entry.type === SHORT) bytes.writeUInt16LE(value, i * 2);
    else if (entry.type === LONG) bytes.writeUInt32LE(value, i * 4);
    else bytes.writeDoubleLE(value, i * 8);
  });
  return bytes;
}
