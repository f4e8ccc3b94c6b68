import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { CliInputError, withInputErrors } from './cli-input';
import { accessOf, addGatewayOptions, type GatewayAccess, type GatewayDefaults } from './gateway-access';
import { GatewayClient, type GatewayAnswer } from './gateway-client';

interface AskFlags extends GatewayAccess {
  json?: boolean;
}

interface ExpertLine {
  expertId?: string;
  status?: string;
  text?: string;
  generatedTokens?: number;
  error?: string;
  timings?: { computeMs?: number };
}

/** A readable rendering of a gateway result: the answer, then one line per expert, then the timings. */
export function formatResult(answer: GatewayAnswer, label: 'Caption' | 'Answer'): string {
  const raw = answer.raw as {
    experts?: ExpertLine[];
    routed?: { expertId: string; reason: string }[];
    missingExperts?: string[];
    questionType?: string;
    packName?: string;
    packVersion?: string;
  };
  const reasons = new Map((raw.routed ?? []).map((routed) => [routed.expertId, routed.reason]));
  const lines = [`${label}: ${answer.text || '(empty)'}`];
  if (raw.questionType) lines.push(`Question type: ${raw.questionType}`);
  lines.push('Experts:');
  for (const expert of raw.experts ?? []) {
    const id = (expert.expertId ?? '?').padEnd(10);
    const status = (expert.status ?? '?').padEnd(9);
    const ms = `${Math.round(expert.timings?.computeMs ?? 0)} ms`.padStart(8);
    const detail = expert.status === 'ok' ? JSON.stringify(expert.text ?? '') : expert.error ?? '';
    lines.push(`  ${id} ${status} ${ms}  ${detail}`);
    const reason = reasons.get(expert.expertId ?? '');
    if (reason) lines.push(`  ${' '.repeat(10)} why: ${reason}`);
  }
  if (answer.degraded) lines.push(`Degraded: missing ${(raw.missingExperts ?? []).join(', ')}`);
  lines.push(`Request ${answer.requestId ?? '?'} · ${Math.round(answer.totalMs ?? 0)} ms · pack ${raw.packName ?? '?'}@${raw.packVersion ?? '?'}`);
  return `${lines.join('\n')}\n`;
}

async function readImage(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new CliInputError(`cannot read image ${path}: ${(error as Error).message}`);
  }
}

/** `rsmoe caption <image>` and `rsmoe vqa <image> <question>`: one request to a running gateway. */
export function registerAskCommands(program: Command, gateway: GatewayDefaults = {}): void {
  const caption = addGatewayOptions(program.command('caption <image>').description('caption an image through a running gateway'), gateway).option(
    '--json',
    'print the raw JSON result',
  );
  caption.action(
    withInputErrors(caption, async (image: string, flags: AskFlags) => {
      const answer = await new GatewayClient({ ...accessOf(flags), maxAttempts: 1 }).caption(await readImage(image), basename(image));
      process.stdout.write(flags.json ? `${JSON.stringify(answer.raw, null, 2)}\n` : formatResult(answer, 'Caption'));
    }),
  );
  const vqa = addGatewayOptions(program.command('vqa <image> <question>').description('answer a question about an image through a running gateway'), gateway).option(
    '--json',
    'print the raw JSON result',
  );
  vqa.action(
    withInputErrors(vqa, async (image: string, question: string, flags: AskFlags) => {
      const answer = await new GatewayClient({ ...accessOf(flags), maxAttempts: 1 }).vqa(await readImage(image), basename(image), question);
      process.stdout.write(flags.json ? `${JSON.stringify(answer.raw, null, 2)}\n` : formatResult(answer, 'Answer'));
    }),
  );
}
