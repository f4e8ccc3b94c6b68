import { MASK_BACKGROUND_LABEL } from '@rsmoe/contracts';
import type { Command } from 'commander';
import type { GatewayDefaults } from './gateway-access';
import { drawMaskOverlay } from '../overlays/mask-overlay';
import { classColours, toHex } from '../overlays/palette';
import { CliInputError, withInputErrors } from './cli-input';
import { formatPercent, gatewayCommand, listOption, printReply, readImageUpload, reportNotWritten, taskClient, writeOutputFile, type GatewayFlags } from './task-command-kit';

interface SegmentFlags extends GatewayFlags {
  classes?: string[];
  query?: string;
  out?: string;
  maskOut?: string;
}

/** `rsmoe segment <image> --classes a,b | --query <text>`: a label mask and each class's area, from POST /v1/segmentation. */
export function registerSegmentCommand(program: Command, gateway: GatewayDefaults = {}): void {
  const command = gatewayCommand(program, 'segment <image>', 'segment an image into classes through a running gateway', gateway)
    .option('--classes <names>', 'comma-separated class names, e.g. building,water', listOption)
    .option('--query <text>', 'a phrase: segment what it names')
    .option('--out <png>', 'write the image with a colour per class blended over it (background left clear), as PNG')
    .option('--mask-out <png>', 'write the label mask PNG as received (pixel = class index, 255 = ignore)');
  command.action(
    withInputErrors(command, async (image: string, flags: SegmentFlags) => {
      if (flags.classes === undefined && flags.query === undefined) throw new CliInputError('give --classes a,b or --query <text> (or both)');
      const upload = await readImageUpload(image);
      const reply = await taskClient(flags).segment(upload, { ...(flags.classes ? { classes: flags.classes } : {}), ...(flags.query !== undefined ? { query: flags.query } : {}) });
      const { mask } = reply.answer;
      const lines: string[] = [];
      if (mask === undefined) {
        lines.push('Mask: none');
      } else {
        const png = Buffer.from(mask.png, 'base64');
        const names = mask.classes.map((entry) => entry.name);
        const colours = classColours(names, [MASK_BACKGROUND_LABEL]);
        const width = Math.max(...names.map((name) => name.length));
        lines.push('Classes (area of the image):');
        for (const entry of mask.classes) {
          const colour = flags.out !== undefined ? colours.get(entry.index) : undefined;
          lines.push(`  ${entry.name.padEnd(width)}  ${formatPercent(entry.areaFraction).padStart(8)}${colour ? `  ${toHex(colour)}` : ''}`);
        }
        if (flags.out !== undefined) {
          await writeOutputFile(flags.out, await drawMaskOverlay(upload.bytes, png, colours));
          lines.push(`Overlay: ${flags.out}`);
        }
        if (flags.maskOut !== undefined) {
          await writeOutputFile(flags.maskOut, png);
          lines.push(`Mask: ${flags.maskOut}`);
        }
      }
      printReply(flags, reply, lines);
      if (mask === undefined) reportNotWritten(command, [flags.out, flags.maskOut], 'the answer has no mask', reply.answer);
    }),
  );
}
