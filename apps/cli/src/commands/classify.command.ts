import type { Command } from 'commander';
import type { GatewayDefaults } from './gateway-access';
import { withInputErrors } from './cli-input';
import { gatewayCommand, printReply, readImageUpload, taskClient, type GatewayFlags } from './task-command-kit';

/** `rsmoe classify <image>`: the scene label, from a running gateway's POST /v1/classify. */
export function registerClassifyCommand(program: Command, gateway: GatewayDefaults = {}): void {
  const command = gatewayCommand(program, 'classify <image>', 'classify the scene of an image through a running gateway', gateway);
  command.action(
    withInputErrors(command, async (image: string, flags: GatewayFlags) => {
      const reply = await taskClient(flags).classify(await readImageUpload(image));
      printReply(flags, reply, [`Label: ${reply.answer.label ?? '(none)'}`]);
    }),
  );
}
