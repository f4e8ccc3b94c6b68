import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestApiKey, images, startTestGateway, type TestGateway } from '../../../gateway/src/testing/gateway-test-kit';
import { registerAskCommands } from './ask.command';
import { registerClassifyCommand } from './classify.command';
import { formatFailure } from './cli-input';
import { REPO_ROOT, type CliRun } from './cli-test-harness';
import { registerEvalCommand } from './eval.command';
import { gatewayHeaders, type GatewayDefaults } from './gateway-access';
import { registerLoadCommand } from './load.command';

/** `rsmoe <args>` in this process with `defaults` as RSMOE_URL / RSMOE_API_KEY would give them; an unhandled error is printed as main.ts prints it. */
async function rsmoe(args: string[], defaults: GatewayDefaults = {}): Promise<CliRun> {
  const program = new Command().name('rsmoe');
  registerAskCommands(program, defaults);
  registerClassifyCommand(program, defaults);
  registerLoadCommand(program, defaults);
  registerEvalCommand(program, defaults);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const capture = (into: string[]) => (chunk: string | Uint8Array) => {
    into.push(String(chunk));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture(stdout) as typeof process.stdout.write);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture(stderr) as typeof process.stderr.write);
  process.exitCode = undefined;
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (error) {
    stderr.push(`${formatFailure(error)}\n`);
    process.exitCode = 2;
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

/** A port nothing listens on: one the system just gave out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}

const NO_KEY = 'this gateway requires an API key: pass --api-key <key> or set RSMOE_API_KEY (`rsmoe keys create` makes one)';
const BAD_KEY = 'the gateway refused the API key given (--api-key or RSMOE_API_KEY): check it, or make one with `rsmoe keys create`';

describe('the client commands against a gateway that requires API keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rsmoe-keys-'));
  const scene = join(dir, 'scene.png');
  let t: TestGateway;
  let key: string;

  beforeAll(async () => {
    t = await startTestGateway({ AUTH_MODE: 'required' });
    key = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'cli-test', ratePerSecond: 100, burst: 100 });
    writeFileSync(scene, await images.png());
  });
  afterAll(() => t?.close());

  it('builds the key header in one place', () => {
    expect(gatewayHeaders({ apiKey: 'k1' })).toEqual({ authorization: 'Bearer k1' });
    expect(gatewayHeaders({})).toEqual({});
  });

  it('sends --api-key, or the environment\'s key, as Authorization: Bearer (the flag wins)', async () => {
    const viaFlag = await rsmoe(['classify', scene, '--url', t.base, '--api-key', key]);
    expect(viaFlag).toMatchObject({ code: 0, stderr: '' });
    expect(viaFlag.stdout).toMatch(/^Label: farmland\n/);
    const viaEnv = await rsmoe(['caption', scene], { url: t.base, apiKey: key });
    expect(viaEnv).toMatchObject({ code: 0, stderr: '' });
    expect(viaEnv.stdout).toMatch(/^Caption: a residential area\. there are many buildings\.\n/);
    const flagWins = await rsmoe(['vqa', scene, 'is there a road?', '--api-key', key], { url: t.base, apiKey: 'not-a-key' });
    expect(flagWins).toMatchObject({ code: 0, stderr: '' });
    expect(flagWins.stdout).toMatch(/^Answer: yes\n/);
  });

  it('a 401 says to pass --api-key or set RSMOE_API_KEY, or that the key given was refused', async () => {
    const calls = t.router.calls.length;
    const without = await rsmoe(['classify', scene, '--url', t.base]);
    expect(without).toMatchObject({ code: 2, stdout: '' });
    expect(without.stderr).toMatch(/^rsmoe: \[unauthenticated\] a valid API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>` \(request \S+\); /);
    expect(without.stderr.endsWith(`; ${NO_KEY}\n`)).toBe(true);
    const wrong = await rsmoe(['caption', scene, '--url', t.base, '--api-key', 'not-a-key']);
    expect(wrong).toMatchObject({ code: 2, stdout: '' });
    expect(wrong.stderr).toBe(`rsmoe: [unauthenticated] a valid API key is required: send \`Authorization: Bearer <key>\` or \`X-API-Key: <key>\`; ${BAD_KEY}\n`);
    expect(t.router.calls.length).toBe(calls);
  });

  it('rsmoe load sends the key with every request, never prints it, and stops at once without one', async () => {
    const args = ['load', '--url', t.base, '--image', scene, '--rate', '4', '--duration', '1', '--concurrency', '1', '--json'];
    const run = await rsmoe([...args, '--api-key', key]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const summary = JSON.parse(run.stdout) as { sent: number; byStatus: Record<string, number> };
    expect(summary.sent).toBeGreaterThan(0);
    expect(summary.byStatus).toEqual({ '200': summary.sent });
    expect(run.stdout).not.toContain(key);
    const refused = await rsmoe(args);
    expect(refused).toMatchObject({ code: 2, stdout: '' });
    expect(refused.stderr).toBe(`rsmoe: [unauthenticated] a valid API key is required: send \`Authorization: Bearer <key>\` or \`X-API-Key: <key>\`; ${NO_KEY}\n`);
  });

  it('rsmoe eval sends the key, and without one stops before the first sample', async () => {
    const root = join(dir, 'classes');
    for (const label of ['farmland', 'forest']) {
      mkdirSync(join(root, label), { recursive: true });
      writeFileSync(join(root, label, `${label}.png`), await images.png());
    }
    const args = ['eval', '--dataset', 'class-folder', '--root', root, '--url', t.base, '--concurrency', '1'];
    const run = await rsmoe([...args, '--api-key', key, '--out', join(dir, 'eval-out')]);
    expect(run.code).toBe(0);
    expect(run.stderr).not.toContain('first failure');
    const report = JSON.parse(readFileSync(join(dir, 'eval-out', 'report.json'), 'utf8')) as { tasks: Record<string, { succeeded: number }> };
    expect(report.tasks.classification.succeeded).toBe(2);
    const refused = await rsmoe([...args, '--out', join(dir, 'refused-out')]);
    expect(refused).toMatchObject({ code: 2, stdout: '' });
    expect(refused.stderr.endsWith(`; ${NO_KEY}\n`)).toBe(true);
  });

  it('reads RSMOE_URL and RSMOE_API_KEY from the environment (bin/rsmoe.cjs)', async () => {
    const run = await new Promise<CliRun>((done) => {
      execFile(process.execPath, ['bin/rsmoe.cjs', 'classify', scene], { cwd: REPO_ROOT, timeout: 60_000, env: { ...process.env, RSMOE_URL: t.base, RSMOE_API_KEY: key } }, (error, stdout, stderr) => {
        done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      });
    });
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Label: farmland\n/);
  });
});

describe('no gateway answering', () => {
  it('names the URL tried and how to get a gateway, for every client', async () => {
    const closed = `http://127.0.0.1:${await closedPort()}`;
    const expected = `rsmoe: [network_error] no gateway answered at ${closed} (connection refused): start one with \`npm start\`, or point --url / RSMOE_URL at yours\n`;
    const dataset = join(mkdtempSync(join(tmpdir(), 'rsmoe-closed-')), 'classes');
    mkdirSync(join(dataset, 'farmland'), { recursive: true });
    writeFileSync(join(dataset, 'farmland', 'a.png'), await images.png());
    const runs = await Promise.all([
      rsmoe(['caption', join(dataset, 'farmland', 'a.png'), '--url', closed]),
      rsmoe(['classify', join(dataset, 'farmland', 'a.png')], { url: closed }),
      rsmoe(['load', '--url', closed, '--duration', '1', '--image', join(dataset, 'farmland', 'a.png')]),
      rsmoe(['eval', '--dataset', 'class-folder', '--root', dataset, '--url', closed, '--out', join(dataset, '..', 'out')]),
    ]);
    for (const run of runs) expect(run).toEqual({ code: 2, stdout: '', stderr: expected });
  });
});
