import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSharedEncoders, loadPackManifest } from '@rsmoe/contracts';
import { readEncoderId } from '@rsmoe/runtime';
import { MeshLauncher } from '../../apps/cli/src/mesh/mesh-launcher';
import { freePort } from '../../apps/cli/src/mesh/redis-locator';
import { ONEVISION_DIR, REDIS_URL, writeTempPack } from './mesh-fixture';

const REPO_ROOT = resolve(__dirname, '../..');

/**
 * A pack that declares one encoderId for two experts whose encoders differ (the same directory, one at
 * fp32 and one at fp16: other vision graph files) is refused: by `rsmoe start` before anything starts, and
 * by an expert process at load (deployments that start experts one by one).
 */
describe('a pack whose shared encoder is not shared', { timeout: 90_000 }, () => {
  let pack: { dir: string; remove(): void };

  beforeAll(() => {
    pack = writeTempPack({
      name: 'mismatch',
      version: '1',
      experts: [
        { id: 'full', model: ONEVISION_DIR, encoderId: 'one-encoder', prompts: { caption: 'Describe the image.' } },
        { id: 'half', model: ONEVISION_DIR, encoderId: 'one-encoder', dtype: 'fp16', prompts: { caption: 'Describe the image.' } },
      ],
    });
  });

  afterAll(() => pack?.remove());

  const namesBoth = (text: string) => {
    expect(text).toContain(`"full" (${ONEVISION_DIR}, dtype fp32)`);
    expect(text).toContain(`"half" (${ONEVISION_DIR}, dtype fp16)`);
    expect(text).toMatch(/declare encoderId "one-encoder" but their vision encoders differ/);
  };

  it('rsmoe start refuses it before starting anything, naming both experts and directories', async () => {
    const run = await new Promise<{ code: number; stderr: string }>((done) =>
      execFile(process.execPath, ['bin/rsmoe.cjs', 'start', '--pack', pack.dir], { cwd: REPO_ROOT, timeout: 60_000 }, (error, _stdout, stderr) =>
        done({ code: error ? Number(error.code) : 0, stderr }),
      ),
    );
    expect(run.code).toBe(2);
    namesBoth(run.stderr);
    expect(run.stderr).not.toMatch(/Redis:/);
  });

  it('an expert process refuses to serve it at load', async () => {
    const prefix = `e2e-enc-${process.pid}`;
    const mesh = new MeshLauncher({
      packDir: pack.dir,
      redisUrl: REDIS_URL,
      keyPrefix: prefix,
      queuePrefix: prefix,
      gatewayPort: await freePort(),
      routerPort: await freePort(),
      env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1' },
      readyTimeoutMs: 60_000,
    });
    try {
      const failure = await mesh.startService('expert.half').then(
        () => new Error('expert.half started'),
        (error: Error) => error,
      );
      expect(failure.message).toMatch(/^expert\.half exited \(1\) before it was ready/);
      const startUpFailed = failure.message.split('\n').find((line) => line.includes('"msg":"start-up failed"'));
      namesBoth((JSON.parse(startUpFailed!) as { error: string }).error);
    } finally {
      await mesh.stop();
    }
  });

  it('is accepted when every expert runs at one dtype (rsmoe start --dtype, MODEL_DTYPE)', async () => {
    const manifest = loadPackManifest(pack.dir);
    await expect(checkSharedEncoders(manifest, readEncoderId, { dtypeOverride: 'fp16' })).resolves.toBeUndefined();
    await expect(checkSharedEncoders(manifest, readEncoderId)).rejects.toThrow(/vision encoders differ/);
  });
});
