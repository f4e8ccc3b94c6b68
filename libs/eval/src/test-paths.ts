import { resolve } from 'node:path';

/** Root of the repository (this file is libs/eval/src/test-paths.ts). */
export const REPO_ROOT = resolve(__dirname, '../../..');
/** The shared real-data samples, next to the repository clone. */
export const SHARED_DATASETS = resolve(REPO_ROOT, '../shared/datasets');
export const UCM_SAMPLE = resolve(SHARED_DATASETS, 'ucm-captions-sample/dataset_ucm_subset.json');
export const UCM_IMAGES = resolve(SHARED_DATASETS, 'ucm-captions-sample/images');
export const RSICD_SAMPLE = resolve(SHARED_DATASETS, 'rsicd-sample/dataset_rsicd_subset.json');
export const RSICD_TEST = resolve(SHARED_DATASETS, 'rsicd-sample/rsicd_test_captions_karpathy.json');
/** Hand-written files in the published formats of the RSUniVLM task datasets (see its README). */
export const EVAL_FIXTURES = resolve(__dirname, '../test-fixtures');
