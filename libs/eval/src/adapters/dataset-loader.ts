import { DatasetFormatError } from '../errors';
import { DATASET_FORMATS, type Dataset, type DatasetFormat } from './dataset';
import { readDatasetJson } from './dataset-files';
import { readKarpathy } from './karpathy.adapter';
import { readNwpu } from './nwpu.adapter';
import { readRsicap } from './rsicap.adapter';
import { readRsieval } from './rsieval.adapter';
import { readRsvqa } from './rsvqa.adapter';

/** Parses `<format>:<path>`; the path may itself contain colons. */
export function parseDatasetSpec(spec: string): { format: DatasetFormat; path: string } {
  const colon = spec.indexOf(':');
  const format = (colon < 0 ? spec : spec.slice(0, colon)) as DatasetFormat;
  const path = colon < 0 ? '' : spec.slice(colon + 1);
  if (!DATASET_FORMATS.includes(format) || path.length === 0) {
    throw new DatasetFormatError(spec, '(spec)', `expected <format>:<path> with format one of ${DATASET_FORMATS.join(', ')}`);
  }
  return { format, path };
}

/**
 * Reads a dataset. For `rsvqa` the path is the split prefix (e.g. `.../LR_split_test`), to which
 * `_questions.json`, `_answers.json` and `_images.json` are appended.
 */
export async function loadDataset(format: DatasetFormat, path: string): Promise<Dataset> {
  switch (format) {
    case 'karpathy':
      return { format, captions: readKarpathy(await readDatasetJson(path), path), vqa: [] };
    case 'nwpu':
      return { format, captions: readNwpu(await readDatasetJson(path), path), vqa: [] };
    case 'rsicap':
      return { format, captions: readRsicap(await readDatasetJson(path), path), vqa: [] };
    case 'rsieval':
      return { format, ...readRsieval(await readDatasetJson(path), path) };
    case 'rsvqa': {
      const prefix = path.replace(/_(questions|answers|images)\.json$/, '');
      const file = (kind: string) => `${prefix}_${kind}.json`;
      const vqa = readRsvqa({
        questions: { json: await readDatasetJson(file('questions')), file: file('questions') },
        answers: { json: await readDatasetJson(file('answers')), file: file('answers') },
        images: { json: await readDatasetJson(file('images')), file: file('images') },
      });
      return { format, captions: [], vqa };
    }
  }
}
