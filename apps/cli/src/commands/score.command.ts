import type { Command } from 'commander';
import { evaluateCaptions, type CandidateSet, type ReferenceSet } from '@rsmoe/eval';
import { CliInputError, readJsonFile, withInputErrors } from './cli-input';

interface ScoreFlags {
  refs: string;
  preds: string;
  tokenized?: boolean;
  perImage?: boolean;
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliInputError(`${what} must be a JSON object keyed by image id`);
  }
  return value as Record<string, unknown>;
}

/**
 * `rsmoe score`: the coco-caption metric table for a references file (`{id: [caption, ...]}`) and a
 * predictions file (`{id: caption}` or `{id: [caption]}`). Prints exactly one JSON object on stdout, values as
 * fractions.
 */
export function registerScoreCommand(program: Command): void {
  const command = program
    .command('score')
    .description('score captions with the MS-COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D)')
    .requiredOption('--refs <file>', 'references: JSON {id: [caption, ...]}')
    .requiredOption('--preds <file>', 'candidates: JSON {id: caption} or {id: [caption]}')
    .option('--tokenized', 'input is already tokenized (space-separated); skip the PTB tokenizer')
    .option('--per-image', 'add per-image scores under "perImage"');
  command.action(
    withInputErrors(command, async (flags: ScoreFlags) => {
      const refs = asObject(await readJsonFile(flags.refs, 'references'), 'references');
      const preds = asObject(await readJsonFile(flags.preds, 'predictions'), 'predictions');
      const result = evaluateCaptions(refs as ReferenceSet, preds as CandidateSet, {
        tokenized: flags.tokenized ?? false,
        perImage: flags.perImage ?? false,
      });
      const output = result.perImage ? { ...result.scores, perImage: result.perImage } : result.scores;
      process.stdout.write(`${JSON.stringify(output)}\n`);
    }),
  );
}
