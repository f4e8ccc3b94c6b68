import { Command } from 'commander';
import { registerBenchCommand } from './commands/bench.command';
import { registerEvalCommand } from './commands/eval.command';
import { registerGenerateCommand } from './commands/generate.command';
import { registerScoreCommand } from './commands/score.command';

const program = new Command();
program.name('rsmoe').description('RS-MoE Mesh command-line tool').showHelpAfterError();
registerGenerateCommand(program);
registerBenchCommand(program);
registerScoreCommand(program);
registerEvalCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  // Typed runtime errors carry a code; anything else is reported by message, never as a stack trace.
  const code = (error as { code?: unknown }).code;
  console.error(`rsmoe: ${typeof code === 'string' ? `[${code}] ` : ''}${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
});
