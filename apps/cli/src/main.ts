import { Command } from 'commander';
import { parseEnv, env } from '@rsmoe/config';
import { z } from 'zod';
import { registerAskCommands } from './commands/ask.command';
import { formatFailure } from './commands/cli-input';
import { registerBenchCommand } from './commands/bench.command';
import { registerChangesCommand } from './commands/changes.command';
import { registerClassifyCommand } from './commands/classify.command';
import { registerEvalCommand } from './commands/eval.command';
import type { GatewayDefaults } from './commands/gateway-access';
import { registerGenerateCommand } from './commands/generate.command';
import { registerGroundCommand } from './commands/ground.command';
import { registerKeysCommand } from './commands/keys.command';
import { registerLoadCommand } from './commands/load.command';
import { registerPackCommand } from './commands/pack-init.command';
import { registerReferCommand } from './commands/refer.command';
import { registerScoreCommand } from './commands/score.command';
import { registerSceneCommand } from './commands/scene.command';
import { registerSegmentCommand } from './commands/segment.command';
import { registerStartCommand } from './commands/start.command';
import { registerSynthCommand } from './commands/synth.command';

// The CLI's only environment read: where Redis is, and which gateway the client commands call with which
// API key, when the user says so (flags win).
const cliEnv = parseEnv(
  'rsmoe',
  {
    REDIS_URL: env.redisUrl().optional().or(z.undefined()),
    RSMOE_URL: z.string().url().optional(),
    RSMOE_API_KEY: z.string().optional(),
  },
  process.env,
);
const gateway: GatewayDefaults = { url: cliEnv.RSMOE_URL, apiKey: cliEnv.RSMOE_API_KEY };

const program = new Command();
program.name('rsmoe').description('RS-MoE Mesh command-line tool').showHelpAfterError();
registerStartCommand(program, cliEnv.REDIS_URL);
registerKeysCommand(program, cliEnv.REDIS_URL);
registerAskCommands(program, gateway);
registerClassifyCommand(program, gateway);
registerGroundCommand(program, gateway);
registerReferCommand(program, gateway);
registerSegmentCommand(program, gateway);
registerSceneCommand(program, gateway);
registerChangesCommand(program, gateway);
registerGenerateCommand(program);
registerBenchCommand(program);
registerLoadCommand(program, gateway);
registerScoreCommand(program);
registerEvalCommand(program, gateway);
registerSynthCommand(program);
registerPackCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(formatFailure(error));
  process.exitCode = 2;
});
