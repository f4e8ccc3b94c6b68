import { Option, type Command } from 'commander';
import type { GatewayDefaults } from './gateway-access';
import { drawBoxOverlay } from '../overlays/box-overlay';
import { withInputErrors } from './cli-input';
import { boxOption, formatBox, gatewayCommand, printReply, readImageUpload, reportNotWritten, taskClient, writeOutputFile, type GatewayFlags } from './task-command-kit';

interface ReferFlags extends GatewayFlags {
  box: [number, number, number, number];
  units: 'px' | 'norm';
  out?: string;
}

/** `rsmoe refer <image> --box x1,y1,x2,y2`: a description of the region, from POST /v1/referring. */
export function registerReferCommand(program: Command, gateway: GatewayDefaults = {}): void {
  const command = gatewayCommand(program, 'refer <image>', 'describe a region of an image through a running gateway', gateway)
    .requiredOption('--box <x1,y1,x2,y2>', 'the region: its corners, in --units', boxOption)
    .addOption(new Option('--units <units>', 'units of --box: px (pixels, continuous coordinates) or norm ([0, 1] of the image)').choices(['px', 'norm']).default('px'))
    .option('--out <png>', 'write the image with the box drawn over it, as PNG');
  command.action(
    withInputErrors(command, async (image: string, flags: ReferFlags) => {
      const upload = await readImageUpload(image);
      const reply = await taskClient(flags).refer(upload, flags.box, flags.units);
      const { caption, box } = reply.answer;
      const lines = [`Description: ${caption || '(none)'}`];
      if (box !== undefined) lines.push(`Box (px, x1,y1,x2,y2): ${formatBox(box.boxPx)}`);
      if (flags.out !== undefined && box !== undefined) {
        await writeOutputFile(flags.out, await drawBoxOverlay(upload.bytes, [{ box: box.boxPx }]));
        lines.push(`Overlay: ${flags.out}`);
      }
      printReply(flags, reply, lines);
      if (box === undefined) reportNotWritten(command, [flags.out], 'the answer has no box', reply.answer);
    }),
  );
}
