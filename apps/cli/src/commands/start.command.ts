import { relative } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_PACK_DIR, REPO_ROOT } from '@rsmoe/config';
import { checkSharedEncoders, formatDtypeSetting, loadPackManifest, type DtypeSetting } from '@rsmoe/contracts';
import { readEncoderId } from '@rsmoe/runtime';
import { MeshLauncher, describeServiceEvent } from '../mesh/mesh-launcher';
import { DEFAULT_RESTART_POLICY } from '../mesh/restart-backoff';
import { locateRedis } from '../mesh/redis-locator';
import { dtypeOption } from './cli-input';

function port(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 65535) throw new InvalidArgumentError('expected a port number');
  return parsed;
}


interface StartFlags {
  pack: string;
  port: number;
  routerPort: number;
  metricsPort: number;
  provider: string;
  threads: string;
  dtype?: DtypeSetting;
  verbose?: boolean;
  auth?: boolean;
}

/** `rsmoe start`: every service of the mesh as its own process, on this machine, until Ctrl-C. */
export function registerStartCommand(program: Command, redisUrlFromEnv: string | undefined): void {
  program
    .command('start')
    .description('start the whole mesh locally (gateway, router, one process per expert, aggregator)')
    .option('--pack <dir>', 'model pack directory', DEFAULT_PACK_DIR)
    .option('--port <n>', 'gateway HTTP port', port, 8080)
    .option('--router-port <n>', 'router gRPC port', port, 50051)
    .option('--metrics-port <n>', 'metrics + health port of the first service; the others follow it', port, 9464)
    .addOption(new Option('--provider <name>', 'execution provider of the experts').choices(['cpu', 'cuda', 'auto']).default('auto'))
    .option('--threads <n>', 'intra-op threads per expert (0 = all cores)', '1')
    .option('--dtype <d>', "every expert's graph precision, overriding pack.json: fp32, fp16, q4f16, quantized, ..., or graph=dtype,...", dtypeOption)
    .option('--auth', 'require API keys at the gateway (AUTH_MODE=required; create them with `rsmoe keys create`)')
    .option('--verbose', 'print every service log line')
    .action(async (flags: StartFlags) => {
      // Before anything starts: experts that declare one encoderId must have the same encoder (at their dtypes).
      await checkSharedEncoders(loadPackManifest(flags.pack), readEncoderId, { dtypeOverride: flags.dtype });
      const redis = await locateRedis(redisUrlFromEnv);
      process.stderr.write(`rsmoe: Redis: ${redis.how}\n`);
      const mesh = new MeshLauncher({
        packDir: flags.pack,
        redisUrl: redis.url,
        keyPrefix: 'rsmoe',
        queuePrefix: 'bull',
        gatewayPort: flags.port,
        routerPort: flags.routerPort,
        metricsBasePort: flags.metricsPort,
        authMode: flags.auth ? 'required' : 'off',
        env: {
          EXECUTION_PROVIDER: flags.provider,
          INTRA_OP_THREADS: flags.threads,
          ...(flags.dtype !== undefined ? { MODEL_DTYPE: formatDtypeSetting(flags.dtype) } : {}),
        },
        // A service that exits on its own comes back with backoff (0.5 s doubling to 10 s), and says so.
        restart: DEFAULT_RESTART_POLICY,
        onServiceEvent: (event) => process.stderr.write(`${describeServiceEvent(event)}\n`),
        onLog: (service, line) => {
          if (flags.verbose || /"level":"(warn|error)"/.test(line) || !line.startsWith('{')) process.stderr.write(`[${service}] ${line}\n`);
        },
      });
      const shutdown = async (): Promise<void> => {
        process.stderr.write('rsmoe: stopping the mesh\n');
        await mesh.stop();
        redis.started?.kill();
        process.exit(0);
      };
      process.on('SIGINT', () => void shutdown());
      process.on('SIGTERM', () => void shutdown());
      try {
        await mesh.start();
      } catch (error) {
        redis.started?.kill();
        throw error;
      }
      const keyHeader = flags.auth ? ' -H "Authorization: Bearer $RSMOE_KEY"' : '';
      const sample = relative(process.cwd(), `${REPO_ROOT}/docs/images/demo-scene.png`);
      process.stdout.write(
        [
          `RS-MoE Mesh is up: ${mesh.gatewayUrl} (pack ${relative(process.cwd(), flags.pack) || '.'}; services: ${mesh.serviceNames.join(', ')}; API keys ${flags.auth ? 'required' : 'off'})`,
          flags.auth
            ? `API keys: required (rsmoe keys create --name <n>; send Authorization: Bearer <key>)`
            : 'API keys: off (anyone who reaches the port may call it; --auth turns keys on)',
          `API docs: ${mesh.gatewayUrl}/docs`,
          `Metrics: ${mesh.serviceNames.map((service) => `${service} ${mesh.metricsUrls[service]}/metrics`).join(', ')}`,
          'Try:',
          `  curl -s${keyHeader} -F image=@${sample} ${mesh.gatewayUrl}/v1/captions`,
          `  curl -s${keyHeader} -F image=@${sample} -F "question=how many airplanes are there ?" ${mesh.gatewayUrl}/v1/vqa`,
          `  npx rsmoe caption ${sample} --url ${mesh.gatewayUrl}`,
          'Ctrl-C stops everything.',
          '',
        ].join('\n'),
      );
    });
}
