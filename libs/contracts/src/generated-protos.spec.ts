import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GENERATED_DIR, generateProtoTypes, generatorArgs, readGeneratedTree } from '../tools/generate-protos';

describe('generated proto types', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rsmoe-gen-check-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('are exactly what the generator produces from protos/ (run `npm run gen:protos` after editing a proto)', () => {
    const out = join(tmp, 'generated');
    generateProtoTypes(out);
    const fresh = readGeneratedTree(out);
    const committed = readGeneratedTree(GENERATED_DIR);
    expect([...committed.keys()]).toEqual([...fresh.keys()]);
    for (const [file, text] of fresh) expect(committed.get(file), `${file} differs from a fresh generation`).toBe(text);
  });

  it('derives its flags from the runtime loader options', () => {
    const args = generatorArgs('/out');
    expect(args).toEqual(expect.arrayContaining(['--longs=String', '--enums=String', '--defaults', '--oneofs', '--grpcLib=@grpc/grpc-js']));
    expect(args).not.toContain('--keepCase');
  });
});
