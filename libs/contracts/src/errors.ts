/** A payload, message or file does not match its contract; `problems` names every offending field. */
export class ContractValidationError extends Error {
  override readonly name: string = 'ContractValidationError';

  constructor(
    /** What was validated, e.g. "ExpertJobData". */
    readonly subject: string,
    /** One line per problem: `<field path>: <what is wrong>`. */
    readonly problems: readonly string[],
  ) {
    super(`invalid ${subject}: ${problems.join('; ')}`);
  }
}

/** A model pack manifest (pack.json) is unreadable or invalid; `problems` lists every problem found. */
export class PackManifestError extends Error {
  override readonly name: string = 'PackManifestError';

  constructor(
    /** Absolute path of the manifest file. */
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the pack manifest:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}
