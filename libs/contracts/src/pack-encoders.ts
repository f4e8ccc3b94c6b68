import { PackManifestError } from './errors';
import { formatDtypeSetting, type DtypeSetting } from './model-dtype';
import { expertDtype, type PackExpert, type PackManifest } from './pack-manifest';

/**
 * Computes the content identity of an expert's vision encoder (libs/runtime `readEncoderId`: sha256 over
 * the vision graph at that dtype, its external data and its preprocessing settings) without loading it.
 */
export type EncoderIdReader = (modelDir: string, dtype: DtypeSetting) => Promise<string>;

export interface SharedEncoderCheckOptions {
  /** Overrides every expert's dtype (`rsmoe start --dtype`, an expert's MODEL_DTYPE). */
  dtypeOverride?: DtypeSetting;
  /** Check only the encoder group of this expert (an expert process at load); default every group. */
  expertId?: string;
  /** Identities already known, by expert id (an expert's own loaded runtime): not read again. */
  known?: Readonly<Record<string, string>>;
}

/**
 * Refuses a pack whose experts declare the same `encoderId` (a promise that image features are computed
 * once and shared) while their actual encoders differ: other weights, other preprocessing, or the same
 * directory at another dtype. Each (directory, dtype) is read once. Throws PackManifestError naming both
 * experts, their directories and dtypes.
 */
export async function checkSharedEncoders(
  manifest: PackManifest,
  readEncoderId: EncoderIdReader,
  options: SharedEncoderCheckOptions = {},
): Promise<void> {
  const groups = new Map<string, PackExpert[]>();
  for (const expert of manifest.experts) groups.set(expert.encoderId, [...(groups.get(expert.encoderId) ?? []), expert]);
  const only = options.expertId === undefined ? undefined : manifest.experts.find((expert) => expert.id === options.expertId)?.encoderId;
  const checked = [...groups].filter(([declared, experts]) => experts.length > 1 && (only === undefined || declared === only));

  const dtypeOf = (expert: PackExpert): DtypeSetting => expertDtype(expert, options.dtypeOverride);
  const keyOf = (expert: PackExpert): string => `${expert.modelDir}\0${formatDtypeSetting(dtypeOf(expert))}`;
  // Each (directory, dtype) is read once; known identities (an expert's own runtime) are not read at all.
  const reads = new Map<string, Promise<string>>();
  for (const expert of manifest.experts) {
    const known = options.known?.[expert.id];
    if (known !== undefined) reads.set(keyOf(expert), Promise.resolve(known));
  }
  const identityOf = (expert: PackExpert): Promise<string> => {
    const key = keyOf(expert);
    let read = reads.get(key);
    if (!read) {
      read = readEncoderId(expert.modelDir, dtypeOf(expert));
      reads.set(key, read);
    }
    return read;
  };

  const idsByGroup = await Promise.all(checked.map(([, experts]) => Promise.all(experts.map(identityOf))));
  const problems: string[] = [];
  checked.forEach(([declared, experts], group) => {
    const ids = idsByGroup[group];
    const [first, ...others] = experts;
    others.forEach((other, index) => {
      if (ids[index + 1] === ids[0]) return;
      problems.push(
        `experts ${describe(first, dtypeOf(first))} and ${describe(other, dtypeOf(other))} declare encoderId ` +
          `${JSON.stringify(declared)} but their vision encoders differ (${ids[0].slice(0, 12)}… vs ${ids[index + 1].slice(0, 12)}…): ` +
          'their image features could not be shared. Give them different encoderIds, or the same encoder files and dtype',
      );
    });
  });
  if (problems.length > 0) throw new PackManifestError(manifest.file, problems);
}

function describe(expert: PackExpert, dtype: DtypeSetting): string {
  return `"${expert.id}" (${expert.modelDir}, dtype ${formatDtypeSetting(dtype)})`;
}
