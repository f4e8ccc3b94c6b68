import type { Command } from 'commander';
import type { GatewayDefaults } from './gateway-access';
import { drawBoxOverlay } from '../overlays/box-overlay';
import { withInputErrors } from './cli-input';
import { formatBox, gatewayCommand, printReply, readImageUpload, taskClient, writeOutputFile, type GatewayFlags } from './task-command-kit';

interface GroundFlags extends GatewayFlags {
  query: string;
  out?: string;
}

/** `rsmoe ground <image> --query <text>`: the boxes of what the phrase names, from POST /v1/grounding. */
export function registerGroundCommand(program: Command, gateway: GatewayDefaults = {}): void {
  const command = gatewayCommand(program, 'ground <image>', 'find the boxes of what a phrase names, through a running gateway', gateway)
    .requiredOption('--query <text>', 'the phrase to find, e.g. "the runway"')
    .option('--out <png>', 'write the image with the boxes (and the phrase) drawn over it, as PNG');
  command.action(
    withInputErrors(command, async (image: string, flags: GroundFlags) => {
      const upload = await readImageUpload(image);
      const reply = await taskClient(flags).ground(upload, flags.query);
      const boxes = reply.answer.boxes ?? [];
      const lines = [`Query: ${reply.answer.query ?? flags.query}`];
      if (boxes.length === 0) lines.push('Boxes: none found');
      else lines.push(`Boxes (px, x1,y1,x2,y2): ${boxes.length}`, ...boxes.map((box, i) => `  ${String(i + 1).padStart(2)}  ${formatBox(box.boxPx)}`));
      if (flags.out !== undefined) {
        await writeOutputFile(flags.out, await drawBoxOverlay(upload.bytes, boxes.map((box) => ({ box: box.boxPx, ...(box.phrase !== undefined ? { label: box.phrase } : {}) }))));
        lines.push(`Overlay: ${flags.out}`);
      }
      printReply(flags, reply, lines);
    }),
  );
}
