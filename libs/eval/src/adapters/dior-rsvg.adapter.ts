import { basename, extname } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { DatasetFormatError } from '../errors';
import type { GroundingSample } from './dataset';
import { JsonValidator } from './json-validation';

/** One annotation file's text with the name it was read from. */
export interface AnnotationFile {
  file: string;
  xml: string;
}

/** An object of one annotation file, before its position over the whole folder is known. */
export type DiorRsvgObject = Omit<GroundingSample, 'index'>;

// Values stay strings (no number guessing): "00001.jpg" and numeric-looking expressions are kept as written.
const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: true });

function numberAt(v: JsonValidator, value: unknown, position: string): number {
  const text = v.nonEmptyString(value, position);
  const n = Number(text);
  if (!Number.isFinite(n)) v.fail(position, `expected a number, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * One DIOR-RSVG annotation (VOC-style XML): `<annotation><filename/><size><width/><height/></size>` and
 * `<object>` entries, each with `<bndbox><xmin/><ymin/><xmax/><ymax/></bndbox>`, a `<description>` (the
 * referring expression) and usually a `<name>` (class). Ids are `<file stem>#<object index>`.
 * @throws DatasetFormatError naming the file and the element (`annotation.object[1].bndbox.xmax`).
 */
export function readDiorRsvgAnnotation(xml: string, file: string): DiorRsvgObject[] {
  const v = new JsonValidator(file);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) v.fail(`line ${valid.err.line}`, `not well-formed XML: ${valid.err.msg}`);
  const root = v.object(v.object(parser.parse(xml) as unknown, '(root)').annotation, 'annotation');
  const image = v.nonEmptyString(root.filename, 'annotation.filename');
  let width: number | undefined;
  let height: number | undefined;
  if (root.size !== undefined) {
    const size = v.object(root.size, 'annotation.size');
    width = size.width === undefined ? undefined : numberAt(v, size.width, 'annotation.size.width');
    height = size.height === undefined ? undefined : numberAt(v, size.height, 'annotation.size.height');
  }
  const objects = root.object === undefined ? [] : Array.isArray(root.object) ? root.object : [root.object];
  const stem = basename(file, extname(file));
  return objects.map((raw: unknown, k) => {
    const at = `annotation.object[${k}]`;
    const object = v.object(raw, at);
    const bndbox = v.object(object.bndbox, `${at}.bndbox`);
    const [xmin, ymin, xmax, ymax] = (['xmin', 'ymin', 'xmax', 'ymax'] as const).map((c) => numberAt(v, bndbox[c], `${at}.bndbox.${c}`));
    if (xmax < xmin || ymax < ymin) v.fail(`${at}.bndbox`, `malformed box [${xmin}, ${ymin}, ${xmax}, ${ymax}] (needs xmax ≥ xmin and ymax ≥ ymin)`);
    const sample: DiorRsvgObject = {
      id: `${stem}#${k}`,
      image,
      expression: v.nonEmptyString(object.description, `${at}.description`),
      box: [xmin, ymin, xmax, ymax],
    };
    if (object.name !== undefined) sample.category = v.nonEmptyString(object.name, `${at}.name`);
    if (width !== undefined) sample.width = width;
    if (height !== undefined) sample.height = height;
    return sample;
  });
}

/**
 * A split file of DIOR-RSVG (`train.txt`, `val.txt`, `test.txt`): one object index per line.
 * @throws DatasetFormatError naming the line.
 */
export function parseDiorRsvgSplit(text: string, file: string): Set<number> {
  const indices = new Set<number>();
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed.length === 0) return;
    if (!/^\d+$/.test(trimmed)) throw new DatasetFormatError(file, `line ${i + 1}`, `expected an object index, got ${JSON.stringify(trimmed.slice(0, 40))}`);
    indices.add(Number(trimmed));
  });
  return indices;
}

/** Numeric stems in numeric order (`2.xml` before `10.xml`), then any others by name. */
function byStem(a: AnnotationFile, b: AnnotationFile): number {
  const sa = basename(a.file, extname(a.file));
  const sb = basename(b.file, extname(b.file));
  const na = /^\d+$/.test(sa) ? Number(sa) : Number.NaN;
  const nb = /^\d+$/.test(sb) ? Number(sb) : Number.NaN;
  if (!Number.isNaN(na) && !Number.isNaN(nb) && na !== nb) return na - nb;
  if (Number.isNaN(na) !== Number.isNaN(nb)) return Number.isNaN(na) ? 1 : -1;
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/**
 * DIOR-RSVG's annotation folder. Objects are numbered over the files in numeric order of their names, then
 * in file order; the split files list these numbers. (The published loader numbers them in the order
 * `os.walk` lists the folder, which the file system decides; later loaders sort by number, as here.) With a
 * split, only the objects it lists are kept.
 * @throws DatasetFormatError naming the file and element, or a split index with no object.
 */
export function readDiorRsvg(files: readonly AnnotationFile[], split?: { indices: ReadonlySet<number>; file: string }): GroundingSample[] {
  const samples: GroundingSample[] = [];
  let index = 0;
  for (const { file, xml } of [...files].sort(byStem)) {
    for (const object of readDiorRsvgAnnotation(xml, file)) {
      if (!split || split.indices.has(index)) samples.push({ ...object, index });
      index++;
    }
  }
  if (split) {
    const beyond = [...split.indices].filter((i) => i >= index);
    if (beyond.length > 0) throw new DatasetFormatError(split.file, '(file)', `index ${Math.min(...beyond)} is beyond the ${index} objects of the annotations`);
  }
  return samples;
}
