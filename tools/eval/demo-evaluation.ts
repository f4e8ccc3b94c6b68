// The demo pack's evaluation (docs/evaluation.md): every variant runs as a real mesh (separate processes,
// real Redis), and `rsmoe eval`'s runner sends the held-out synthetic set and the real UCM sample through
// its gateway. Reports land in .cache/eval-runs/<variant>/<run>/; the summary in docs/evaluation-results.json
// and the tables of docs/evaluation.md (between its results markers) are rewritten from them.
//
//   npx tsx tools/eval/demo-evaluation.ts [--variants-dir .cache/variants] [--vqa-limit N] [--only name,...]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDataset, type CaptionReport, type EvalReport, type VqaReport } from '@rsmoe/eval';
import { runEvaluation } from '../../apps/cli/src/commands/eval-runner';
import { GatewayClient } from '../../apps/cli/src/commands/gateway-client';
import { MeshLauncher } from '../../apps/cli/src/mesh/mesh-launcher';
import { freePort } from '../../apps/cli/src/mesh/redis-locator';

const ROOT = resolve(__dirname, '../..');
/** The held-out set: a synth seed no training run uses (tools/train draws its data from other seeds). */
export const HELD_OUT = { seed: 9999, count: 1000 };
const UCM = resolve(ROOT, '../shared/datasets/ucm-captions-sample');

interface Variant {
  name: string;
  label: string;
  pack: string;
  /** Evaluate the real UCM sample too. */
  ucm: boolean;
}

interface VariantResult {
  variant: string;
  label: string;
  pack: string;
  caption: CaptionReport;
  vqa: VqaReport;
  ucm?: CaptionReport;
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      'variants-dir': { type: 'string', default: join(ROOT, '.cache/variants') },
      'heldout-dir': { type: 'string', default: join(ROOT, '.cache/eval-heldout') },
      'runs-dir': { type: 'string', default: join(ROOT, '.cache/eval-runs') },
      'vqa-limit': { type: 'string' },
      only: { type: 'string' },
      concurrency: { type: 'string', default: '16' },
    },
  });
  return values;
}

function variants(variantsDir: string): Variant[] {
  return [
    { name: 'two-stage', label: '(a) MoE, two stages (models/demo)', pack: join(ROOT, 'models/demo'), ucm: true },
    { name: 'one-stage', label: '(b) MoE, one stage (experts from scratch)', pack: join(variantsDir, 'one-stage'), ucm: false },
    { name: 'dense', label: '(c) dense, same parameters, one generic instruction', pack: join(variantsDir, 'dense'), ucm: false },
    { name: 'generic-prompts', label: '(d) MoE (a) with one generic prompt for every expert', pack: join(ROOT, 'models/demo/pack.generic.json'), ucm: false },
  ];
}

function ensureHeldOut(dir: string): void {
  if (existsSync(join(dir, 'dataset_synth.json'))) return;
  process.stderr.write(`writing the held-out set (seed ${HELD_OUT.seed}, ${HELD_OUT.count} images) to ${dir}\n`);
  const run = spawnSync(process.execPath, [join(ROOT, 'bin/rsmoe.cjs'), 'synth', '--out', dir, '--count', String(HELD_OUT.count), '--seed', String(HELD_OUT.seed)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (run.status !== 0) throw new Error(`rsmoe synth failed (${run.status})`);
}

async function evaluate(variant: Variant, options: ReturnType<typeof parseOptions>): Promise<VariantResult> {
  const heldOut = options['heldout-dir']!;
  const gatewayPort = await freePort();
  const mesh = new MeshLauncher({
    packDir: variant.pack,
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    keyPrefix: `eval-${variant.name}`,
    queuePrefix: `eval-${variant.name}`,
    gatewayPort,
    routerPort: await freePort(),
    env: { EXECUTION_PROVIDER: 'cpu', INTRA_OP_THREADS: '1' },
    onLog: (service, line) => {
      if (/"level":"error"/.test(line)) process.stderr.write(`[${variant.name} ${service}] ${line}\n`);
    },
    readyTimeoutMs: 120_000,
  });
  await mesh.start().catch(async (error: unknown) => {
    await mesh.stop();
    throw error;
  });
  try {
    const gateway = new GatewayClient({ url: mesh.gatewayUrl });
    const concurrency = Number(options.concurrency);
    const runsDir = join(options['runs-dir']!, variant.name);
    const synth = await loadDataset('karpathy', join(heldOut, 'dataset_synth.json'));
    const questions = await loadDataset('rsvqa', join(heldOut, 'synth'));
    const vqaLimit = options['vqa-limit'] ? Number(options['vqa-limit']) : undefined;
    const common = { imagesDir: join(heldOut, 'images'), concurrency, gateway };
    const run = async (name: string, task: 'caption' | 'vqa', spec: Parameters<typeof runEvaluation>[0]['captions'] | Parameters<typeof runEvaluation>[0]['vqa'], label: string, imagesDir = common.imagesDir): Promise<EvalReport> => {
      const started = Date.now();
      process.stderr.write(`${variant.name}: ${name} (${spec.length} samples)\n`);
      const report = await runEvaluation({
        ...common,
        imagesDir,
        task,
        datasetLabel: label,
        captions: task === 'caption' ? (spec as Parameters<typeof runEvaluation>[0]['captions']) : [],
        vqa: task === 'vqa' ? (spec as Parameters<typeof runEvaluation>[0]['vqa']) : [],
        outDir: join(runsDir, name),
      });
      process.stderr.write(`${variant.name}: ${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s, ${report.failed} failed\n`);
      return report;
    };
    const caption = (await run('caption', 'caption', synth.captions, `karpathy:held-out synth seed ${HELD_OUT.seed}`)) as CaptionReport;
    const vqaSamples = vqaLimit ? questions.vqa.slice(0, vqaLimit) : questions.vqa;
    const vqa = (await run('vqa', 'vqa', vqaSamples, `rsvqa:held-out synth seed ${HELD_OUT.seed}`)) as VqaReport;
    let ucm: CaptionReport | undefined;
    if (variant.ucm && existsSync(UCM)) {
      const dataset = await loadDataset('karpathy', join(UCM, 'dataset_ucm_subset.json'));
      ucm = (await run('ucm', 'caption', dataset.captions, 'karpathy:UCM-captions sample (real imagery, all splits)', join(UCM, 'images'))) as CaptionReport;
    }
    return { variant: variant.name, label: variant.label, pack: variant.pack.replace(`${ROOT}/`, ''), caption, vqa, ...(ucm ? { ucm } : {}) };
  } finally {
    await mesh.stop();
  }
}

const f3 = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(3));
const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(1)}`);

function tables(results: VariantResult[]): string {
  const lines: string[] = [];
  lines.push(`Held-out synthetic set: ${HELD_OUT.count} images of \`rsmoe synth --seed ${HELD_OUT.seed}\` (never trained on), every request through the running gateway.`, '');
  lines.push('### Captions', '', '| variant | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | METEOR | ROUGE-L | CIDEr | failed | p50 ms |', '|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const m = r.caption.metrics;
    lines.push(`| ${r.label} | ${f3(m?.Bleu_1)} | ${f3(m?.Bleu_2)} | ${f3(m?.Bleu_3)} | ${f3(m?.Bleu_4)} | ${f3(m?.METEOR)} | ${f3(m?.ROUGE_L)} | ${f3(m?.CIDEr)} | ${r.caption.failed} | ${r.caption.latency.clientMs.p50?.toFixed(0) ?? '–'} |`);
  }
  // RSVQA files name comparison questions `comp`.
  const types = ['presence', 'count', 'comp', 'rural_urban', 'area'];
  lines.push('', '### VQA accuracy (%)', '', `| variant | presence | count | comparison | rural/urban | area | average | overall | questions | failed |`, `|---|${types.map(() => '---|').join('')}---|---|---|---|`);
  for (const r of results) {
    const a = r.vqa.accuracy;
    lines.push(`| ${r.label} | ${types.map((t) => pct(a?.perType[t]?.accuracy)).join(' | ')} | ${pct(a?.averageAccuracy)} | ${pct(a?.overallAccuracy)} | ${r.vqa.samples} | ${r.vqa.failed} |`);
  }
  const ucm = results.filter((r) => r.ucm);
  if (ucm.length > 0) {
    lines.push('', '### Real imagery: the UCM-captions sample', '', '| variant | images | BLEU-1 | BLEU-4 | METEOR | ROUGE-L | CIDEr |', '|---|---|---|---|---|---|---|');
    for (const r of ucm) {
      const m = r.ucm!.metrics;
      lines.push(`| ${r.label} | ${r.ucm!.succeeded} | ${f3(m?.Bleu_1)} | ${f3(m?.Bleu_4)} | ${f3(m?.METEOR)} | ${f3(m?.ROUGE_L)} | ${f3(m?.CIDEr)} |`);
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions();
  ensureHeldOut(options['heldout-dir']!);
  const only = options.only?.split(',');
  const chosen = variants(options['variants-dir']!).filter((v) => !only || only.includes(v.name));
  const missing = chosen.filter((v) => !existsSync(v.pack.endsWith('.json') ? v.pack : join(v.pack, 'pack.json')));
  if (missing.length > 0) throw new Error(`no pack.json in ${missing.map((v) => v.pack).join(', ')}: train the variants first (tools/train/README.md)`);
  const summaryFile = join(ROOT, 'docs/evaluation-results.json');
  const previous: VariantResult[] = existsSync(summaryFile) ? (JSON.parse(readFileSync(summaryFile, 'utf8')) as { results: VariantResult[] }).results : [];
  const results = [...previous];
  for (const variant of chosen) {
    const result = await evaluate(variant, options);
    const at = results.findIndex((r) => r.variant === variant.name);
    if (at >= 0) results[at] = result;
    else results.push(result);
  }
  const order = variants('').map((v) => v.name);
  results.sort((a, b) => order.indexOf(a.variant) - order.indexOf(b.variant));
  // Per-sample rows stay in .cache; the summary keeps the reports without their failure lists' bulk.
  writeFileSync(summaryFile, `${JSON.stringify({ heldOut: HELD_OUT, results }, null, 2)}\n`);
  const doc = join(ROOT, 'docs/evaluation.md');
  const text = existsSync(doc) ? readFileSync(doc, 'utf8') : '<!-- results:begin -->\n<!-- results:end -->\n';
  const updated = text.replace(/<!-- results:begin -->[\s\S]*<!-- results:end -->/, `<!-- results:begin -->\n${tables(results)}\n<!-- results:end -->`);
  writeFileSync(doc, updated);
  process.stdout.write(`${tables(results)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`demo-evaluation: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
