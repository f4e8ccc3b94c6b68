import { DatasetFormatError } from '../errors';
import type { ChangeMaskSample } from './dataset';
import { isImageFile } from './image-files';

/** The image file names of a LEVIR-CD split folder's `A/`, `B/` and `label/` sub-folders. */
export interface LevirCdListing {
  A: readonly string[];
  B: readonly string[];
  label: readonly string[];
}

/**
 * A LEVIR-CD split folder (`train/`, `val/` or `test/`): `A/` (before), `B/` (after) and `label/` (binary
 * change mask, 255 = changed) holding the same file names. Non-image files are ignored. Samples are in file
 * name order, id = file name.
 * @throws DatasetFormatError naming the split folder and the first file missing from a sub-folder.
 */
export function readLevirCd(listing: LevirCdListing, root: string): ChangeMaskSample[] {
  const folders = ['A', 'B', 'label'] as const;
  const names = Object.fromEntries(folders.map((f) => [f, new Set(listing[f].filter(isImageFile))])) as Record<(typeof folders)[number], Set<string>>;
  const all = [...new Set(folders.flatMap((f) => [...names[f]]))].sort();
  if (all.length === 0) throw new DatasetFormatError(root, 'A/', 'no images');
  for (const name of all) {
    const missing = folders.find((f) => !names[f].has(name));
    if (missing) {
      const present = folders.filter((f) => names[f].has(name)).map((f) => `${f}/`);
      throw new DatasetFormatError(root, `${missing}/${name}`, `missing (present in ${present.join(' and ')})`);
    }
  }
  return all.map((name) => ({ id: name, before: `A/${name}`, after: `B/${name}`, label: `label/${name}` }));
}
