import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { apiKeyId, createRedisKeys, TASKS } from '@rsmoe/contracts';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../../../gateway/src/testing/gateway-test-kit';
import { REPO_ROOT } from './cli-test-harness';
import { parseRate, parseTasks, registerKeysCommand } from './keys.command';

/** Runs `rsmoe keys ...` in this process against the test gateway's Redis and key prefix; returns what it printed. */
async function keys(t: TestGateway, args: string[]): Promise<{ out: string; err: string }> {
  let out = '';
  let err = '';
  const program = new Command().exitOverride();
  registerKeysCommand(program, t.config.REDIS_URL, { out: (text) => (out += text), err: (text) => (err += text) });
  await program.parseAsync(['keys', ...args, '--key-prefix', t.config.KEY_PREFIX], { from: 'user' });
  return { out, err };
}

describe('rsmoe keys', () => {
  let t: TestGateway;
  const experts = (key: string) => fetch(`${t.base}/v1/experts`, { headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    t = await startTestGateway({ AUTH_MODE: 'required' });
  });
  afterAll(() => t.close());

  it('parses rates and task lists', () => {
    expect(parseRate('10/s')).toBe(10);
    expect(parseRate('600/m')).toBe(10);
    expect(parseRate('36/h')).toBe(0.01);
    expect(parseRate('2.5')).toBe(2.5);
    expect(() => parseRate('0/s')).toThrow(/rate/);
    expect(() => parseRate('10 per second')).toThrow(/rate/);
    expect(parseTasks('caption, vqa,caption')).toEqual(['caption', 'vqa']);
    expect(parseTasks('all')).toEqual([...TASKS]);
    expect(() => parseTasks('caption,ocr')).toThrow(/ocr/);
  });

  it('create prints a high-entropy key once, stores only its sha256, and the gateway accepts it', async () => {
    const created = await keys(t, ['create', '--name', 'alice', '--rate', '600/m', '--burst', '5', '--daily-quota', '100', '--tasks', 'caption,vqa']);
    const secret = created.out.trim();
    expect(secret).toMatch(/^rsk_[A-Za-z0-9_-]{43}$/);
    expect(created.err).toMatch(/not shown again/);
    const redisKeys = createRedisKeys(t.config.KEY_PREFIX);
    const stored = await t.redis.hgetall(redisKeys.apiKeyKey(apiKeyId(secret)));
    expect(stored).toMatchObject({ name: 'alice', rate: '10', burst: '5', dailyQuota: '100', tasks: 'caption,vqa' });
    const everything = JSON.stringify(await Promise.all((await t.redis.keys(`${t.config.KEY_PREFIX}:*`)).map((key) => t.redis.dump(key))));
    expect(everything).not.toContain(secret.slice(4));
    expect((await experts(secret)).status).toBe(200);
    await expect(keys(t, ['create', '--name', 'alice'])).rejects.toThrow(/exists/);
  });

  it('list shows settings and use, never a key or its hash', async () => {
    const { out: secret } = await keys(t, ['create', '--name', 'bob']);
    const table = (await keys(t, ['list'])).out;
    expect(table).toMatch(/^NAME\s+RATE\s+BURST\s+IMAGES TODAY\s+TASKS\s+CREATED/);
    expect(table).toMatch(/\nalice\s+10\/s\s+5\s+0\/100\s+caption,vqa\s/);
    expect(table).toMatch(/\nbob\s+10\/s\s+20\s+0\/10000\s+all\s/);
    const json = (await keys(t, ['list', '--json'])).out;
    expect((JSON.parse(json) as { name: string }[]).map((key) => key.name)).toEqual(['alice', 'bob']);
    for (const text of [table, json]) {
      expect(text).not.toContain('rsk_');
      expect(text).not.toContain(apiKeyId(secret.trim()));
    }
  });

  it('revoke makes the key 401 at once and frees its name', async () => {
    const { out } = await keys(t, ['create', '--name', 'carol']);
    const secret = out.trim();
    expect((await experts(secret)).status).toBe(200);
    await keys(t, ['revoke', 'carol']);
    expect((await experts(secret)).status).toBe(401);
    expect((await keys(t, ['list'])).out).not.toMatch(/\ncarol\s/);
    await expect(keys(t, ['revoke', 'carol'])).rejects.toThrow(/no key named "carol"/);
    expect((await keys(t, ['create', '--name', 'carol'])).out).toMatch(/^rsk_/);
  });

  it('is a command of bin/rsmoe (REDIS_URL and --key-prefix as the other commands)', async () => {
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(
        process.execPath,
        ['bin/rsmoe.cjs', 'keys', 'list', '--key-prefix', t.config.KEY_PREFIX],
        { cwd: REPO_ROOT, timeout: 60_000, env: { ...process.env, REDIS_URL: t.config.REDIS_URL } },
        (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/\nalice\s/);
  });
});
