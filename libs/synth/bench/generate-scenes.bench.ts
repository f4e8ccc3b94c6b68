/**
 * Throughput of the generator: `npx tsx libs/synth/bench/generate-scenes.bench.ts [count] [concurrency]`.
 * Generates, describes and PNG-encodes `count` scenes (default 1000) and prints the time of each stage.
 */
import { performance } from 'node:perf_hooks';
import { describeScene, encodePng, generateScene, type Scene } from '../src/index';

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1000);
  const concurrency = Number(process.argv[3] ?? 8);
  const t0 = performance.now();
  const scenes: Scene[] = [];
  for (let seed = 0; seed < count; seed++) scenes.push(generateScene({ seed }));
  const t1 = performance.now();
  for (const scene of scenes) describeScene(scene, scene.seed);
  const t2 = performance.now();
  let bytes = 0;
  for (let i = 0; i < scenes.length; i += concurrency) {
    const pngs = await Promise.all(scenes.slice(i, i + concurrency).map((s) => encodePng(s)));
    bytes += pngs.reduce((sum, p) => sum + p.length, 0);
  }
  const t3 = performance.now();
  const total = (t3 - t0) / 1000;
  console.log(
    JSON.stringify({
      count,
      generateSeconds: +((t1 - t0) / 1000).toFixed(2),
      describeSeconds: +((t2 - t1) / 1000).toFixed(2),
      encodeSeconds: +((t3 - t2) / 1000).toFixed(2),
      totalSeconds: +total.toFixed(2),
      meanPngBytes: Math.round(bytes / count),
      projected20kSeconds: +((total / count) * 20000).toFixed(0),
    }),
  );
}

void main();
