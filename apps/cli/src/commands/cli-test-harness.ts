import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

/** Repository root (this file is apps/cli/src/commands/cli-test-harness.ts). */
export const REPO_ROOT = resolve(__dirname, '../../../..');

// A private entry point for tests until main.ts registers the commands: same program shape as bin/rsmoe.cjs.
const ENTRY = `
require('tsx/cjs');
const { Command } = require('commander');
const program = new Command();
program.name('rsmoe');
require('./apps/cli/src/commands/score.command.ts').registerScoreCommand(program);
require('./apps/cli/src/commands/eval.command.ts').registerEvalCommand(program);
// Under node -e there is no script path in argv: every argument after the executable is the user's.
program.parseAsync(process.argv.slice(1), { from: 'user' }).catch((e) => { console.error(e instanceof Error ? e.message : e); process.exitCode = 1; });
`;

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `rsmoe <args>` in a child process (asynchronously, so a server in the test process can answer it). */
export function runCli(args: string[]): Promise<CliRun> {
  return new Promise((done) => {
    execFile(process.execPath, ['-e', ENTRY, ...args], { cwd: REPO_ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}
