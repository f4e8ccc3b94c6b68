import type { PromptPlaceholder } from '@rsmoe/contracts';

export type PromptValues = Partial<Record<PromptPlaceholder, string>>;

/**
 * Fills the placeholders (PROMPT_PLACEHOLDERS) in one pass (a value containing braces is never expanded
 * again); a placeholder without a value becomes empty, and the spaces around it collapse.
 */
export function renderPrompt(template: string, values: PromptValues): string {
  const filled = template.replace(/\{(question|scene|query|box)\}/g, (_match, name: PromptPlaceholder) => values[name] ?? '');
  return filled.replace(/\s+/g, ' ').trim();
}
