import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { CliInputError } from './cli-input';
import { accessOf, addGatewayOptions, type GatewayAccess, type GatewayDefaults } from './gateway-access';
import { GatewayTaskClient, type ImageUpload, type TaskAnswerView, type TaskReply } from './task-client';

/** The flags every task command has: `--url`, `--api-key` (their defaults from the environment) and `--json`. */
export interface GatewayFlags extends GatewayAccess {
  json?: boolean;
}

/** A subcommand of `program` with `--url`, `--api-key` and `--json`, as `rsmoe caption` has them. */
export function gatewayCommand(program: Command, usage: string, description: string, defaults: GatewayDefaults = {}): Command {
  return addGatewayOptions(program.command(usage).description(description), defaults).option('--json', 'print the answer JSON as the gateway sent it');
}

export function taskClient(flags: GatewayFlags): GatewayTaskClient {
  return new GatewayTaskClient(accessOf(flags));
}

/** An image file to upload; an unreadable one is a CliInputError naming it. */
export async function readImageUpload(path: string): Promise<ImageUpload> {
  try {
    return { bytes: new Uint8Array(await readFile(path)), filename: basename(path) };
  } catch (error) {
    throw new CliInputError(`cannot read image ${path}: ${(error as Error).message}`);
  }
}

/** Writes an output file; failing to is a CliInputError naming it. */
export async function writeOutputFile(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFile(path, bytes);
  } catch (error) {
    throw new CliInputError(`cannot write ${path}: ${(error as Error).message}`);
  }
}

/** The answer: its JSON as sent (`--json`), or `lines` then whether it is degraded and the request line. */
export function printReply(flags: GatewayFlags, reply: TaskReply, lines: string[]): void {
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(reply.raw, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${[...lines, ...footer(reply.answer)].join('\n')}\n`);
}

function footer(answer: TaskAnswerView): string[] {
  const lines = answer.degraded ? [`Degraded: missing ${(answer.missingExperts ?? []).join(', ') || '?'}`] : [];
  lines.push(`Request ${answer.requestId} · ${Math.round(answer.timings?.totalMs ?? 0)} ms · pack ${answer.packName ?? '?'}@${answer.packVersion ?? '?'}`);
  return lines;
}

/** Says on stderr that outputs asked for cannot be written from this answer (an expected outcome, not a failure). */
export function reportNotWritten(command: Command, paths: (string | undefined)[], reason: string, answer: TaskAnswerView): void {
  const named = paths.filter((path): path is string => path !== undefined);
  if (named.length === 0) return;
  const degraded = answer.degraded ? ` (degraded: missing ${(answer.missingExperts ?? []).join(', ') || '?'})` : '';
  process.stderr.write(`${command.name()}: ${reason}${degraded}; not written: ${named.join(', ')}\n`);
}

/** A box's corners for printing: x1,y1,x2,y2 with at most two decimals. */
export function formatBox(box: readonly number[]): string {
  return box.map((value) => String(Number(value.toFixed(2)))).join(',');
}

/** A fraction as a percentage with two decimals, e.g. `12.50 %`. */
export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(2)} %`;
}

/** Commander parser of `--box x1,y1,x2,y2`: four finite numbers, else a usage error. */
export function boxOption(value: string): [number, number, number, number] {
  const parts = value.split(',').map((part) => (part.trim() === '' ? Number.NaN : Number(part)));
  if (parts.length !== 4 || !parts.every(Number.isFinite)) throw new InvalidArgumentError('expected four numbers x1,y1,x2,y2');
  return parts as [number, number, number, number];
}

/** Commander parser of a comma-separated list: trimmed, empty names dropped; none at all is a usage error. */
export function listOption(value: string): string[] {
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) throw new InvalidArgumentError('expected comma-separated names, e.g. building,water');
  return names;
}
