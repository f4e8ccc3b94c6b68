import type { ZodError, ZodType, ZodTypeDef } from 'zod';
import { ContractValidationError } from './errors';

/** `a.b[2].c` from a zod issue path. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out === '' ? '(root)' : out;
}

export function formatIssues(error: ZodError): string[] {
  return error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
}

/** Parses `value` with `schema`, or throws a ContractValidationError naming every bad field. */
export function parseWith<T>(schema: ZodType<T, ZodTypeDef, unknown>, subject: string, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ContractValidationError(subject, formatIssues(parsed.error));
  return parsed.data;
}
