import { DatasetFormatError } from '../errors';

/** Small checks that report the first bad record by its JSON path. */
export class JsonValidator {
  constructor(readonly file: string) {}

  fail(position: string, message: string): never {
    throw new DatasetFormatError(this.file, position, message);
  }

  object(value: unknown, position: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(position, `expected an object, got ${kind(value)}`);
    return value as Record<string, unknown>;
  }

  array(value: unknown, position: string): unknown[] {
    if (!Array.isArray(value)) this.fail(position, `expected an array, got ${kind(value)}`);
    return value;
  }

  string(value: unknown, position: string): string {
    if (typeof value !== 'string') this.fail(position, `expected a string, got ${kind(value)}`);
    return value;
  }

  nonEmptyString(value: unknown, position: string): string {
    const s = this.string(value, position);
    if (s.trim().length === 0) this.fail(position, 'expected a non-empty string');
    return s;
  }

  id(value: unknown, position: string): string {
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value === 'string' && value.length > 0) return value;
    return this.fail(position, `expected an id (number or string), got ${kind(value)}`);
  }

  boolean(value: unknown, position: string): boolean {
    if (typeof value !== 'boolean') this.fail(position, `expected true or false, got ${kind(value)}`);
    return value;
  }
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;
}

/** Parses JSON text; a syntax error becomes a DatasetFormatError at `(file)`. */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new DatasetFormatError(file, '(file)', `not valid JSON: ${(error as Error).message}`);
  }
}
