import { InvalidClassListError } from './errors';
import { IGNORE_LABEL } from './label-mask';

/**
 * A class list's labels keyed for matching model text: trimmed, lower case (RSUniVLM lower-cases its
 * answers before reading them), inner whitespace as one space.
 */
export function classKey(label: string): string {
  return label.trim().toLowerCase().replace(/\s+/g, ' ');
}

/**
 * Checks a class list (index = label value in masks) and returns its key → index map. Throws
 * InvalidClassListError with every problem: none, more than 255 (255 is IGNORE_LABEL), a blank name, a
 * name the mask text cannot hold (`*`, `,`, a line break), or two names with the same key.
 */
export function classIndexByKey(classes: readonly string[]): Map<string, number> {
  const problems: string[] = [];
  if (classes.length === 0) problems.push('no classes');
  if (classes.length > IGNORE_LABEL) problems.push(`${classes.length} classes, at most ${IGNORE_LABEL}`);
  const byKey = new Map<string, number>();
  classes.forEach((name, index) => {
    const key = classKey(name);
    if (key === '') problems.push(`class ${index} is blank`);
    else if (/[*,\r\n]/.test(name)) problems.push(`class ${index} ("${name}") holds "*", "," or a line break`);
    else if (byKey.has(key)) problems.push(`classes ${byKey.get(key)} and ${index} are both "${key}"`);
    else byKey.set(key, index);
  });
  if (problems.length > 0) throw new InvalidClassListError(problems);
  return byKey;
}
