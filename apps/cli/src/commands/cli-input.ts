import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { ContractValidationError, parseDtypeSetting, type DtypeSetting } from '@rsmoe/contracts';

/** A problem with what the user gave the command (a flag, a file): reported in one line, exit code 2. */
export class CliInputError extends Error {
  readonly code = 'cli_input_invalid';
}

/** Exit code of usage and input errors. */
export const INPUT_ERROR_EXIT_CODE = 2;

/** Reads and parses a JSON file; a missing or malformed file is a CliInputError naming it. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new CliInputError(`${what} ${path}: ${reason}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new CliInputError(`${what} ${path}: not valid JSON (${(error as Error).message})`);
  }
}

/** True for errors that describe bad input (ours or the eval library's), as opposed to bugs. */
export function isInputError(error: unknown): boolean {
  if (error instanceof CliInputError) return true;
  return typeof error === 'object' && error !== null && 'code' in error && typeof (error as { code: unknown }).code === 'string' &&
    ['scoring_input_invalid', 'dataset_format_invalid'].includes((error as { code: string }).code);
}

/**
 * The line the program prints for an error no command handled: `rsmoe: [code] message`. Typed errors carry a
 * code (`code`, or a GatewayRequestError's `errorCode`); anything else is reported by message, never as a stack trace.
 */
export function formatFailure(error: unknown): string {
  const { code, errorCode } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; errorCode?: unknown };
  const label = typeof code === 'string' ? code : typeof errorCode === 'string' ? errorCode : undefined;
  return `rsmoe: ${label ? `[${label}] ` : ''}${error instanceof Error ? error.message : String(error)}`;
}

/** A subcommand's name with its parents' (`pack init`), without the program's. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent; at = at.parent) names.unshift(at.name());
  return names.join(' ') || command.name();
}

/**
 * Wraps a command action: input errors print one line on stderr and set exit code 2; anything else is
 * rethrown to the program's handler. Commander's own usage errors also exit with 2.
 */
export function withInputErrors<A extends unknown[]>(command: Command, action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  command.exitOverride((error) => {
    process.exit(error.exitCode === 0 ? 0 : INPUT_ERROR_EXIT_CODE);
  });
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (error) {
      if (!isInputError(error)) throw error;
      process.stderr.write(`${commandPath(command)}: ${(error as Error).message}\n`);
      process.exitCode = INPUT_ERROR_EXIT_CODE;
    }
  };
}

/** Commander parser of `--dtype` (fp16, q4f16, ... or graph=dtype,...): a bad value is a usage error naming it. */
export function dtypeOption(value: string): DtypeSetting {
  try {
    return parseDtypeSetting(value, '--dtype');
  } catch (error) {
    if (error instanceof ContractValidationError) throw new InvalidArgumentError(error.problems.join('; '));
    throw error;
  }
}
