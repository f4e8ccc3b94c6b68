import { DatasetFormatError } from '../errors';
import type { ClassificationSample } from './dataset';
import { isImageFile } from './image-files';

/** File names per class folder: `{<class>: [file, …]}`. */
export type ClassFolderListing = Readonly<Record<string, readonly string[]>>;

const codeUnitOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A class-per-folder scene-classification set (UCM land use, AID): `<root>/<class>/<image>`. Classes are
 * sorted by name (code-unit order, like torchvision's `ImageFolder`), samples by class then file name;
 * non-image files are ignored.
 * @throws DatasetFormatError naming the root, or the first class folder without images.
 */
export function readClassFolders(listing: ClassFolderListing, root: string): { classes: string[]; samples: ClassificationSample[] } {
  const classes = Object.keys(listing).sort(codeUnitOrder);
  if (classes.length === 0) throw new DatasetFormatError(root, '(folder)', 'no class folders');
  const samples: ClassificationSample[] = [];
  for (const label of classes) {
    const files = listing[label].filter(isImageFile).sort(codeUnitOrder);
    if (files.length === 0) throw new DatasetFormatError(root, `${label}/`, 'class folder without images');
    for (const file of files) samples.push({ id: `${label}/${file}`, image: `${label}/${file}`, label });
  }
  return { classes, samples };
}
