import { readdir, readFile } from 'node:fs/promises';
import { DatasetFormatError } from '../errors';
import { parseJson } from './json-validation';

function unreadable(path: string, position: string, error: unknown): DatasetFormatError {
  return new DatasetFormatError(path, position, `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
}

/** A dataset file's text; an unreadable file is a DatasetFormatError at `(file)`. */
export async function readDatasetText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw unreadable(file, '(file)', error);
  }
}

/** A dataset file parsed as JSON; unreadable or malformed files are DatasetFormatErrors at `(file)`. */
export async function readDatasetJson(file: string): Promise<unknown> {
  return parseJson(await readDatasetText(file), file);
}

/** The visible files and sub-folders of a dataset folder, each sorted by name. */
export async function listDatasetFolder(dir: string): Promise<{ files: string[]; folders: string[] }> {
  try {
    const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
    return {
      files: entries.filter((e) => e.isFile()).map((e) => e.name).sort(),
      folders: entries.filter((e) => e.isDirectory()).map((e) => e.name).sort(),
    };
  } catch (error) {
    throw unreadable(dir, '(folder)', error);
  }
}
