import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { REPO_ROOT } from '@rsmoe/config';
import { sniffImageFormat } from '@rsmoe/runtime/image';
import { LOAD_LIMITS, parseLoadOptions, type LoadFlags } from '../load/load-options';
import { formatLoadReport, summariseLoad } from '../load/load-report';
import { runLoad } from '../load/load-runner';
import { addGatewayOptions, checkGatewayAccess, type GatewayDefaults } from './gateway-access';

const MEDIA_TYPES = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp', tiff: 'image/tiff' } as const;

/** `rsmoe load` (`npm run load`): a bounded, loopback-only load on a running gateway, and its numbers. */
export function registerLoadCommand(program: Command, gateway: GatewayDefaults = {}): void {
  addGatewayOptions(
    program.command('load').description('send requests to a running gateway for a while; print throughput, p50/p95/p99 latency and the status mix'),
    gateway,
    'gateway base URL, loopback only unless --allow-remote',
  )
    .option('--concurrency <n>', `requests in flight at once (1-${LOAD_LIMITS.maxConcurrency})`, '8')
    .option('--duration <s>', `seconds to send for (1-${LOAD_LIMITS.maxDurationS})`, '10')
    .option('--rate <r>', `requests started per second (open loop, up to ${LOAD_LIMITS.maxRate}); default: closed loop`)
    .option('--task <task>', 'caption or vqa', 'caption')
    .option('--question <text>', 'the question of --task vqa', 'how many airplanes are there ?')
    .option('--image <file>', 'the image every request sends', resolve(REPO_ROOT, 'docs/images/demo-scene.png'))
    .option('--timeout-ms <ms>', 'client-side limit per request', '60000')
    .option('--allow-remote', 'allow a gateway that is not on this machine')
    .option('--json', 'print the summary as one JSON object')
    .action(async (flags: LoadFlags & { apiKey?: string; image: string; json?: boolean }) => {
      const options = parseLoadOptions(flags);
      const bytes = new Uint8Array(await readFile(flags.image));
      const format = sniffImageFormat(bytes);
      if (format === null) throw Object.assign(new Error(`${flags.image} is not a PNG, JPEG, WebP or TIFF image`), { code: 'invalid_image' });
      const key = flags.apiKey !== undefined ? { apiKey: flags.apiKey } : {};
      // One cheap request first: an unreachable gateway or a missing key is one clear error, not a run of failures.
      await checkGatewayAccess({ url: options.url, ...key });
      const { samples, elapsedMs } = await runLoad(options, { bytes, filename: basename(flags.image), mediaType: MEDIA_TYPES[format] }, key);
      const summary = summariseLoad(samples, elapsedMs);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ options, ...summary })}\n`);
        return;
      }
      const loop = options.rate === undefined ? 'closed loop' : `open loop at ${options.rate}/s`;
      process.stdout.write(
        formatLoadReport(summary, `rsmoe load: ${options.task} on ${options.url}, concurrency ${options.concurrency}, ${options.durationS} s, ${loop}`),
      );
    });
}
