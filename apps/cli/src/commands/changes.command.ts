import { CHANGE_MASK_CLASSES, CHANGE_OUTPUTS, type ChangeOutput } from '@rsmoe/contracts';
import { Option, type Command } from 'commander';
import type { GatewayDefaults } from './gateway-access';
import { drawChangeOverlay } from '../overlays/mask-overlay';
import { CliInputError, withInputErrors } from './cli-input';
import { formatPercent, gatewayCommand, printReply, readImageUpload, reportNotWritten, taskClient, writeOutputFile, type GatewayFlags } from './task-command-kit';

interface ChangesFlags extends GatewayFlags {
  output: ChangeOutput;
  out?: string;
  maskOut?: string;
}

const CHANGED = CHANGE_MASK_CLASSES[1];

/** `rsmoe changes <before> <after>`: what changed between two co-registered images, from POST /v1/changes. */
export function registerChangesCommand(program: Command, gateway: GatewayDefaults = {}): void {
  const command = gatewayCommand(program, 'changes <before> <after>', 'describe and map the changes between two images of one place through a running gateway', gateway)
    .addOption(new Option('--output <what>', 'ask for the change caption, the change mask, or both').choices(CHANGE_OUTPUTS).default('both'))
    .option('--out <png>', 'write before and after side by side, the changed pixels highlighted on after, as PNG')
    .option('--mask-out <png>', `write the change mask PNG as received (pixel = class index: 0 ${CHANGE_MASK_CLASSES[0]}, 1 ${CHANGED})`);
  command.action(
    withInputErrors(command, async (beforePath: string, afterPath: string, flags: ChangesFlags) => {
      if (flags.output === 'caption' && (flags.out !== undefined || flags.maskOut !== undefined)) {
        throw new CliInputError('--out and --mask-out need the change mask: use --output mask or both');
      }
      const [before, after] = [await readImageUpload(beforePath), await readImageUpload(afterPath)];
      const reply = await taskClient(flags).changes(before, after, flags.output);
      const { caption, mask, changedFraction } = reply.answer;
      const lines: string[] = [];
      if (flags.output !== 'mask') lines.push(`Caption: ${caption || '(none)'}`);
      if (flags.output !== 'caption') lines.push(changedFraction !== undefined ? `Changed: ${formatPercent(changedFraction)} of the pixels` : 'Changed: (no mask)');
      if (mask !== undefined) {
        const png = Buffer.from(mask.png, 'base64');
        if (flags.out !== undefined) {
          const changed = mask.classes.find((entry) => entry.name === CHANGED)?.index ?? CHANGE_MASK_CLASSES.indexOf(CHANGED);
          await writeOutputFile(flags.out, await drawChangeOverlay(before.bytes, after.bytes, png, changed));
          lines.push(`Overlay: ${flags.out}`);
        }
        if (flags.maskOut !== undefined) {
          await writeOutputFile(flags.maskOut, png);
          lines.push(`Mask: ${flags.maskOut}`);
        }
      }
      printReply(flags, reply, lines);
      if (mask === undefined) reportNotWritten(command, [flags.out, flags.maskOut], 'the answer has no change mask', reply.answer);
    }),
  );
}
