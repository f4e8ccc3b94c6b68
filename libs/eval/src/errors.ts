/**
 * Typed errors of the evaluation library. Each carries a stable `code` so that the CLI can map it to exit
 * code 2 (input error) without matching on messages.
 */
export abstract class EvalError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Candidates and references do not describe the same set of ids, or a value has the wrong shape. */
export class ScoringInputError extends EvalError {
  readonly code = 'scoring_input_invalid';
}

/**
 * A dataset file does not follow its documented format. `position` names the first bad record
 * (a JSON path such as `images[12].sentences[3].raw`, or `line 7` for line-based files).
 */
export class DatasetFormatError extends EvalError {
  readonly code = 'dataset_format_invalid';
  constructor(
    readonly file: string,
    readonly position: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${position}: ${message}`, options);
  }
}
