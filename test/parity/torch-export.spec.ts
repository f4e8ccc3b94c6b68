import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VlmRuntime } from '@rsmoe/runtime';
import { TINY_MODEL_DIR, maxAbsDifference, readGolden, readGoldenImage } from '../../libs/runtime/test-support/fixture';

/**
 * Re-exports the tiny fixture with PyTorch (Debian's python3-torch, run by /usr/bin/python3) and checks that
 * onnxruntime-node through libs/runtime gives what torch computed. CI installs torch, so there it must run;
 * elsewhere the suite is reported as skipped with the reason.
 */
const PYTHON = '/usr/bin/python3';
const SCRIPT = resolve(__dirname, '../../tools/train/make_tiny_fixture.py');
const torchCheck = spawnSync(PYTHON, ['-c', 'import torch, onnx'], { encoding: 'utf8' });
const torchAvailable = torchCheck.status === 0;
if (!torchAvailable) {
  const reason = `torch parity suite skipped: ${PYTHON} cannot import torch and onnx (apt-get install python3-torch python3-onnx)`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI must run it`);
  console.warn(reason);
}

describe.skipIf(!torchAvailable)('torch export parity', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'rsmoe-parity-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('a fresh export runs in onnxruntime-node exactly as in torch, and equals the committed fixture', async () => {
    const exported = spawnSync(PYTHON, [SCRIPT, '--out', outDir, '--seed', '0'], { encoding: 'utf8', timeout: 120_000 });
    expect(exported.status, exported.stderr).toBe(0);

    const golden = readGolden(outDir);
    const runtime = await VlmRuntime.load(outDir, {
      executionProvider: 'cpu',
      intraOpThreads: 1,
      logger: { info: () => undefined, warn: () => undefined },
    });
    try {
      const requests = golden.cases.map((goldenCase) => ({
        prompt: goldenCase.prompt,
        images: [readGoldenImage(goldenCase, outDir)],
        options: { maxNewTokens: golden.max_new_tokens },
      }));
      const logits = await runtime.nextTokenLogits(requests);
      const batched = await runtime.generate(requests);
      for (const [index, goldenCase] of golden.cases.entries()) {
        expect(runtime.encodePrompt(goldenCase.prompt, await runtime.encodeImages(requests[index].images))).toEqual(goldenCase.input_ids);
        expect(maxAbsDifference(logits[index], goldenCase.first_step_logits)).toBeLessThan(1e-4);
        expect(batched[index].tokenIds).toEqual(goldenCase.greedy_tokens);
        const [alone] = await runtime.generate([requests[index]]);
        expect(alone.tokenIds).toEqual(goldenCase.greedy_tokens);
      }
    } finally {
      await runtime.release();
    }
    // An Optimum-style merged decoder carries a `use_cache_branch` flag input; the runtime must feed it.
    const flagged = join(outDir, 'with-cache-flag');
    const addFlag = spawnSync(
      PYTHON,
      [
        '-c',
        [
          'import onnx, shutil, sys',
          'src, dst = sys.argv[1], sys.argv[2]',
          'shutil.copytree(src, dst, ignore=shutil.ignore_patterns("with-cache-flag"))',
          'path = dst + "/onnx/decoder_model_merged.onnx"',
          'model = onnx.load(path)',
          'model.graph.input.append(onnx.helper.make_tensor_value_info("use_cache_branch", onnx.TensorProto.BOOL, [1]))',
          'onnx.save(model, path)',
        ].join('\n'),
        outDir,
        flagged,
      ],
      { encoding: 'utf8' },
    );
    expect(addFlag.status, addFlag.stderr).toBe(0);
    const flaggedRuntime = await VlmRuntime.load(flagged, {
      executionProvider: 'cpu',
      intraOpThreads: 1,
      logger: { info: () => undefined, warn: () => undefined },
    });
    try {
      const [result] = await flaggedRuntime.generate([
        { prompt: golden.cases[0].prompt, images: [readGoldenImage(golden.cases[0], outDir)], options: { maxNewTokens: golden.max_new_tokens } },
      ]);
      expect(result.tokenIds).toEqual(golden.cases[0].greedy_tokens);
    } finally {
      await flaggedRuntime.release();
    }

    // The committed fixture is what the script makes: same ONNX bytes, same goldens. Torch's float
    // rounding of the first-step logits depends on the CPU's kernels (they differ in the 7th significant
    // digit between machines), so those compare with a tolerance; everything else exactly.
    type Golden = { cases: Array<{ first_step_logits: number[][] } & Record<string, unknown>> } & Record<string, unknown>;
    const fresh = JSON.parse(readFileSync(join(outDir, 'golden.json'), 'utf8')) as Golden;
    const committed = JSON.parse(readFileSync(join(TINY_MODEL_DIR, 'golden.json'), 'utf8')) as Golden;
    const withoutLogits = (g: Golden) => ({ ...g, cases: g.cases.map(({ first_step_logits: _, ...rest }) => rest) });
    expect(withoutLogits(fresh)).toEqual(withoutLogits(committed));
    fresh.cases.forEach((freshCase, i) => {
      const expected = committed.cases[i].first_step_logits.flat();
      const actual = freshCase.first_step_logits.flat();
      expect(actual).toHaveLength(expected.length);
      const worst = Math.max(...actual.map((value, j) => Math.abs(value - expected[j])));
      expect(worst, `case ${i}: largest first-step logit difference`).toBeLessThan(1e-4);
    });
    for (const file of ['onnx/vision_encoder.onnx', 'onnx/embed_tokens.onnx', 'onnx/decoder_model_merged.onnx']) {
      expect(readFileSync(join(outDir, file)).equals(readFileSync(join(TINY_MODEL_DIR, file))), file).toBe(true);
    }
  });
});
