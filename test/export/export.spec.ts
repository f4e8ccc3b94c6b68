import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * tools/export end to end: the tiny HF-made checkpoints of shared/models/hf-reference are exported with
 * tools/export/export.py (Python venv from tools/export/setup-venv.sh), then tools/export/verify.py runs the
 * graphs in onnxruntime with transformers' own processor building the inputs. Where the venv cannot be made
 * (no local package index), the suite is skipped with the reason.
 *
 * The exported folders stay in EXPORT_ROOT (printed) so later suites can reuse them.
 */
const REPO_ROOT = resolve(__dirname, '../..');
const HF_REFERENCE = resolve(REPO_ROOT, '../shared/models/hf-reference');
const PYTHON = join(REPO_ROOT, '.venv-export', 'bin', 'python');
const TOOLS = join(REPO_ROOT, 'tools', 'export');
const EXPORT_ROOT = join(tmpdir(), 'rsmoe-export-test');

const OV_DIR = join(EXPORT_ROOT, 'llava-onevision-tiny');
const IB_DIR = join(EXPORT_ROOT, 'instructblip-tiny');
const TRIPLED_CHECKPOINT = join(EXPORT_ROOT, 'rsunivlm-tiny-checkpoint');
const GRANULARITY_DIR = join(EXPORT_ROOT, 'rsunivlm-tiny');
const GRANULARITY_NAMES = ['image', 'region', 'pixel'];
const DTYPES = ['fp32', 'fp16', 'q4f16', 'q4', 'bnb4', 'quantized', 'int8', 'uint8'];
const SUFFIX = (dtype: string) => (dtype === 'fp32' ? '' : `_${dtype}`);

function skipReason(): string | undefined {
  if (!existsSync(join(HF_REFERENCE, 'llava-onevision-tiny', 'model.safetensors'))) return `${HF_REFERENCE} is missing`;
  const setup = spawnSync('bash', [join(TOOLS, 'setup-venv.sh')], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 600_000 });
  if (setup.status === 3) return setup.stderr.trim();
  // any other failure is a failure, not a skip: beforeAll reports it
  return undefined;
}

const reason = skipReason();
if (reason) console.warn(`tools/export suite skipped: ${reason}`);

interface PythonRun {
  code: number;
  stdout: string;
  stderr: string;
}

function python(script: string, args: string[]): Promise<PythonRun> {
  return new Promise((done) => {
    execFile(PYTHON, [join(TOOLS, script), ...args], { cwd: REPO_ROOT, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function mustRun(script: string, args: string[]): Promise<PythonRun> {
  const run = await python(script, args);
  if (run.code !== 0) throw new Error(`${script} ${args.join(' ')} exited with ${run.code}:\n${run.stderr.slice(-4000)}`);
  return run;
}

interface VerifyReport {
  ok: boolean;
  kind: string;
  cases: { id: string; exact: boolean; expected: number[][]; fp32: number[][]; equal: boolean }[];
  variants: Record<string, { loads: boolean; error?: string; cases: Record<string, { tokens: number[][]; generated: boolean; firstStepLogitsMaxAbsDiff: number }> }>;
}

async function verify(args: string[]): Promise<VerifyReport> {
  const run = await python('verify.py', args);
  if (!run.stdout.trim()) throw new Error(`verify.py ${args.join(' ')} printed no report:\n${run.stderr.slice(-4000)}`);
  const report = JSON.parse(run.stdout) as VerifyReport;
  expect(run.code, JSON.stringify(report)).toBe(report.ok ? 0 : 1);
  return report;
}

interface ReferenceCase {
  id: string;
  exact: boolean;
  greedyNewTokenIds: number[] | number[][];
}

function referenceCases(model: string): ReferenceCase[] {
  return (JSON.parse(readFileSync(join(HF_REFERENCE, model, 'reference.json'), 'utf8')) as { cases: ReferenceCase[] }).cases;
}

const rows = (ids: number[] | number[][]): number[][] => (Array.isArray(ids[0]) ? (ids as number[][]) : [ids as number[]]);

/** The fp32 graphs give HF's greedy tokens on every exact case (read here from reference.json, not from the report). */
function expectReferenceTokens(report: VerifyReport, model: string): void {
  const exact = referenceCases(model).filter((c) => c.exact);
  expect(exact.length).toBeGreaterThanOrEqual(4);
  for (const c of exact) {
    const line = report.cases.find((l) => l.id === c.id);
    expect(line?.fp32, c.id).toEqual(rows(c.greedyNewTokenIds));
  }
}

function expectEveryVariantGenerates(report: VerifyReport, dtypes: string[]): void {
  for (const dtype of dtypes.filter((d) => d !== 'fp32')) {
    const variant = report.variants[dtype];
    expect(variant?.loads, `${dtype}: ${variant?.error}`).toBe(true);
    for (const [id, run] of Object.entries(variant.cases)) {
      expect(run.generated, `${dtype} ${id}`).toBe(true);
      expect(run.tokens.flat().length, `${dtype} ${id}`).toBeGreaterThan(0);
    }
    expect(Object.keys(variant.cases).length).toBe(report.cases.length);
  }
}

function graphFiles(dir: string): string[] {
  return readdirSync(join(dir, 'onnx')).sort();
}

describe.skipIf(reason !== undefined)('tools/export: Hugging Face checkpoints to expert directories', () => {
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    if (!existsSync(PYTHON)) throw new Error('tools/export/setup-venv.sh failed (run it to see why)');
    rmSync(EXPORT_ROOT, { recursive: true, force: true });
    console.log(`tools/export: exported models in ${EXPORT_ROOT}`);
    const timed = async (label: string, work: () => Promise<unknown>) => {
      const started = Date.now();
      await work();
      timings[label] = (Date.now() - started) / 1000;
    };
    await timed('export llava-onevision (8 dtypes)', () => mustRun('export.py', [join(HF_REFERENCE, 'llava-onevision-tiny'), '--out', OV_DIR, '--dtypes', 'all']));
    await timed('export instructblip (8 dtypes)', () => mustRun('export.py', [join(HF_REFERENCE, 'instructblip-tiny'), '--out', IB_DIR, '--dtypes', 'all']));
    await timed('granularity fixture + export (3 experts, fp32+q4f16)', async () => {
      await mustRun('make_granularity_fixture.py', ['--checkpoint', join(HF_REFERENCE, 'llava-onevision-tiny'), '--out', TRIPLED_CHECKPOINT]);
      await mustRun('export.py', [TRIPLED_CHECKPOINT, '--out', GRANULARITY_DIR, '--granularity-experts', '--dtypes', 'fp32,q4f16']);
    });
    console.log(`tools/export timings (s): ${JSON.stringify(timings)}`);
  }, 420_000);

  it('writes the onnx-community LLaVA-OneVision layout: three graphs in every dtype, processor and tokenizer files', () => {
    expect(graphFiles(OV_DIR)).toEqual(
      ['decoder_model_merged', 'embed_tokens', 'vision_encoder'].flatMap((g) => DTYPES.map((d) => `${g}${SUFFIX(d)}.onnx`)).sort(),
    );
    for (const file of ['config.json', 'generation_config.json', 'processor_config.json', 'preprocessor_config.json', 'chat_template.jinja', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(readFileSync(join(OV_DIR, file), 'utf8'), file).toBe(readFileSync(join(HF_REFERENCE, 'llava-onevision-tiny', file), 'utf8'));
    }
  });

  it('LLaVA-OneVision fp32 reproduces reference.json greedy tokens exactly; every variant loads and generates', async () => {
    const report = await verify(['--model', OV_DIR, '--reference', join(HF_REFERENCE, 'llava-onevision-tiny'), '--dtypes', 'all']);
    expect(report.ok).toBe(true);
    expectReferenceTokens(report, 'llava-onevision-tiny');
    expectEveryVariantGenerates(report, DTYPES);
    // fp16 keeps fp32 I/O and stays close; 4- and 8-bit weights move the logits more (hf-reference README)
    expect(report.variants.fp16.cases['single-image-base-size'].firstStepLogitsMaxAbsDiff).toBeLessThan(0.05);
  }, 120_000);

  it('InstructBLIP: four graphs plus qformer_tokenizer; fp32 reproduces reference.json; every variant generates', async () => {
    expect(graphFiles(IB_DIR)).toEqual(
      ['decoder_model_merged', 'embed_tokens', 'qformer', 'vision_encoder'].flatMap((g) => DTYPES.map((d) => `${g}${SUFFIX(d)}.onnx`)).sort(),
    );
    expect(readdirSync(join(IB_DIR, 'qformer_tokenizer')).sort()).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    const report = await verify(['--model', IB_DIR, '--reference', join(HF_REFERENCE, 'instructblip-tiny'), '--dtypes', 'all']);
    expect(report.ok).toBe(true);
    expectReferenceTokens(report, 'instructblip-tiny');
    expectEveryVariantGenerates(report, DTYPES);
  }, 120_000);

  it('--granularity-experts: three experts sharing one byte-identical vision encoder, each decoder its own MLP copy', async () => {
    const dirs = GRANULARITY_NAMES.map((name) => join(GRANULARITY_DIR, name));
    expect(readdirSync(GRANULARITY_DIR).filter((name) => !name.startsWith('.')).sort()).toEqual([...GRANULARITY_NAMES].sort());
    for (const file of ['vision_encoder.onnx', 'vision_encoder_q4f16.onnx']) {
      const [first, ...rest] = dirs.map((dir) => readFileSync(join(dir, 'onnx', file)));
      for (const other of rest) expect(other.equals(first), file).toBe(true);
    }
    const decoders = dirs.map((dir) => readFileSync(join(dir, 'onnx', 'decoder_model_merged.onnx')));
    expect(decoders[0].equals(decoders[1]) || decoders[1].equals(decoders[2]) || decoders[0].equals(decoders[2])).toBe(false);

    const reference = join(HF_REFERENCE, 'llava-onevision-tiny');
    const reports: VerifyReport[] = [];
    for (const [k, dir] of dirs.entries()) {
      reports.push(await verify(['--model', dir, '--reference', reference, '--dtypes', 'q4f16', '--hf-checkpoint', TRIPLED_CHECKPOINT, '--granularity', String(k)]));
    }
    for (const [k, report] of reports.entries()) {
      expect(report.ok, GRANULARITY_NAMES[k]).toBe(true);
      for (const line of report.cases) expect(line.fp32, `${GRANULARITY_NAMES[k]} ${line.id}`).toEqual(line.expected);
      expectEveryVariantGenerates(report, ['q4f16']);
    }
    // copy 0 is the unperturbed reference MLP: the image expert is the reference model
    expectReferenceTokens(reports[0], 'llava-onevision-tiny');
    const tokens = reports.map((report) => JSON.stringify(report.cases.map((line) => line.fp32)));
    expect(new Set(tokens).size).toBe(3);
  }, 180_000);
});
