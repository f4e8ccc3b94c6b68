import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkSharedEncoders, PackManifestError, parsePackManifest, type DtypeSetting, type PackManifest } from './index';

const tmp = mkdtempSync(join(tmpdir(), 'rsmoe-encoders-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
for (const dir of ['a', 'b', 'c']) mkdirSync(join(tmp, dir));

function pack(experts: { id: string; model: string; encoderId?: string; dtype?: DtypeSetting }[]): PackManifest {
  return parsePackManifest({ name: 'p', version: '1', experts: experts.map((e) => ({ ...e, prompts: { caption: 'describe .' } })) }, tmp);
}

/** Encoder identities by directory name and dtype, as readEncoderId would compute them; records each read. */
function reader(identities: Record<string, string>) {
  const reads: string[] = [];
  const read = async (modelDir: string, dtype: DtypeSetting): Promise<string> => {
    const key = `${modelDir.slice(tmp.length + 1)}@${typeof dtype === 'string' ? dtype : JSON.stringify(dtype)}`;
    reads.push(key);
    const id = identities[key];
    if (id === undefined) throw new Error(`no identity for ${key}`);
    return id;
  };
  return { read, reads };
}

async function problemsOf(promise: Promise<unknown>): Promise<readonly string[]> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (error instanceof PackManifestError) return error.problems;
  throw new Error(`expected a PackManifestError, got ${String(error)}`);
}

describe('checkSharedEncoders', () => {
  it('accepts a group whose encoders are identical, reading each directory and dtype once', async () => {
    const manifest = pack([
      { id: 'x', model: 'a', encoderId: 'shared' },
      { id: 'y', model: 'a', encoderId: 'shared' },
      { id: 'z', model: 'b', encoderId: 'shared' },
      { id: 'solo', model: 'c' },
    ]);
    const { read, reads } = reader({ 'a@fp32': 'h1', 'b@fp32': 'h1' });
    await checkSharedEncoders(manifest, read);
    expect(reads.sort()).toEqual(['a@fp32', 'b@fp32']);
  });

  it('refuses a group whose encoders differ, naming both experts, their directories and dtypes', async () => {
    const manifest = pack([
      { id: 'x', model: 'a', encoderId: 'shared' },
      { id: 'y', model: 'a', encoderId: 'shared', dtype: 'fp16' },
    ]);
    const { read } = reader({ 'a@fp32': 'h1'.repeat(32), 'a@fp16': 'h2'.repeat(32) });
    const problems = await problemsOf(checkSharedEncoders(manifest, read));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`"x" (${join(tmp, 'a')}, dtype fp32)`);
    expect(problems[0]).toContain(`"y" (${join(tmp, 'a')}, dtype fp16)`);
    expect(problems[0]).toMatch(/declare encoderId "shared" but their vision encoders differ \(h1h1h1h1h1h1… vs h2h2h2h2h2h2…\)/);
  });

  it('applies the dtype override to every expert (rsmoe start --dtype)', async () => {
    const manifest = pack([
      { id: 'x', model: 'a', encoderId: 'shared' },
      { id: 'y', model: 'a', encoderId: 'shared', dtype: 'fp16' },
    ]);
    const { read, reads } = reader({ 'a@q4f16': 'h3' });
    await checkSharedEncoders(manifest, read, { dtypeOverride: 'q4f16' });
    expect(reads).toEqual(['a@q4f16']);
  });

  it('checks only one expert’s group when asked, using the identity its runtime already computed', async () => {
    const manifest = pack([
      { id: 'x', model: 'a', encoderId: 'one' },
      { id: 'y', model: 'b', encoderId: 'one' },
      { id: 'v', model: 'b', encoderId: 'two' },
      { id: 'w', model: 'c', encoderId: 'two' },
    ]);
    const { read, reads } = reader({ 'b@fp32': 'h1', 'c@fp32': 'different' });
    await checkSharedEncoders(manifest, read, { expertId: 'x', known: { x: 'h1' } });
    expect(reads).toEqual(['b@fp32']);
    const second = reader({ 'a@fp32': 'h1' });
    const problems = await problemsOf(checkSharedEncoders(manifest, second.read, { expertId: 'y', known: { y: 'h0' } }));
    expect(second.reads).toEqual(['a@fp32']);
    expect(problems).toEqual([expect.stringMatching(/^experts "x" .* and "y" .* declare encoderId "one"/)]);
  });
});
