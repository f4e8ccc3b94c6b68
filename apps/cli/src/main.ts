import { Command } from 'commander';
import { parseEnv, env } from '@rsmoe/config';
import { z } from 'zod';
import { registerAskCommands } from './commands/ask.command';
import { registerBenchCommand } from './commands/bench.command';
import { registerChangesCommand } from './commands/changes.command';
import { registerClassifyCommand } from './commands/classify.command';
import { registerEvalCommand } from './commands/eval.command';
import { registerGenerateCommand } from './commands/generate.command';
import { registerGroundCommand } from './commands/ground.command';
import { registerKeysCommand } from './commands/keys.command';
import { registerLoadCommand } from './commands/load.command';
import { registerPackCommand } from './commands/pack-init.command';
import { registerReferCommand } from './commands/refer.command';
import { registerScoreCommand } from './commands/score.command';
import { registerSegmentCommand } from './commands/segment.command';
import { registerStartCommand } from './commands/start.command';
import { registerSynthCommand } from './commands/synth.command';

// The CLI's only environment read: where Redis is, when the user says so.
const cliEnv = parseEnv('rsmoe', { REDIS_URL: env.redisUrl().optional().or(z.undefined()) }, process.env);

const program = new Command();
program.name('rsmoe').description('RS-MoE Mesh command-line tool').showHelpAfterError();
registerStartCommand(program, cliEnv.REDIS_URL);
registerKeysCommand(program, cliEnv.REDIS_URL);
registerAskCommands(program);
registerClassifyCommand(program);
registerGroundCommand(program);
registerReferCommand(program);
registerSegmentCommand(program);
registerChangesCommand(program);
registerGenerateCommand(program);
registerBenchCommand(program);
registerLoadCommand(program);
registerScoreCommand(program);
registerEvalCommand(program);
registerSynthCommand(program);
registerPackCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  // Typed errors carry a code; anything else is reported by message, never as a stack trace.
  const { code, errorCode } = error as { code?: unknown; errorCode?: unknown };
  const label = typeof code === 'string' ? code : typeof errorCode === 'string' ? errorCode : undefined;
  console.error(`rsmoe: ${label ? `[${label}] ` : ''}${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
});
