#!/usr/bin/env node
// Change pairs for the demo pack's change tasks, written with libs/synth's own generator (`generateChangePair`):
//
//   node tools/train/synth_change_pairs.cjs --out <dir> --seed <dataset seed> --indices <file of image indices>
//
// `rsmoe synth` makes one change pair per 20 images and records only the changed objects' ids; the demo pack
// needs more pairs and the changed objects' polygons (its change masks are those polygons rasterised). Pair i is
// generated exactly as `rsmoe synth` does for image i (seed imageSeed(seed, i), scene class sceneClassOf(i)), so
// one of its two images is dataset image i and every seed stays inside the training set's seeds.
// Writes <out>/<i>_before.png, <out>/<i>_after.png and <out>/change_pairs.jsonl (one line per pair, in index order).
require('tsx/cjs');
const { mkdirSync, readFileSync, writeFileSync, createWriteStream } = require('node:fs');
const { join } = require('node:path');
const { generateChangePair, encodePng, imageSeed, sceneClassOf } = require('../../libs/synth/src/index.ts');

function flag(name) {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0 || at + 1 >= process.argv.length) throw new Error(`missing --${name}`);
  return process.argv[at + 1];
}

const round2 = (v) => Math.round(v * 100) / 100;

async function main() {
  const out = flag('out');
  const seed = Number(flag('seed'));
  const indices = readFileSync(flag('indices'), 'utf8').split(/\s+/).filter(Boolean).map(Number);
  mkdirSync(out, { recursive: true });
  const lines = new Array(indices.length);
  let next = 0;
  const worker = async () => {
    while (next < indices.length) {
      const k = next++;
      const index = indices[k];
      const pair = generateChangePair({ seed: imageSeed(seed, index), size: 128, sceneClass: sceneClassOf(index) });
      // Added objects live in `after`, removed ones in `before`.
      const holder = pair.change.kind === 'removed' ? pair.before : pair.after;
      const changed = pair.change.objectIds.map((id) => holder.objects[id]);
      const [before, after] = await Promise.all([encodePng(pair.before), encodePng(pair.after)]);
      writeFileSync(join(out, `${index}_before.png`), before);
      writeFileSync(join(out, `${index}_after.png`), after);
      lines[k] = JSON.stringify({
        index,
        kind: pair.change.kind,
        object_class: pair.change.objectClass,
        caption: pair.caption,
        changed: changed.map((o) => ({ class: o.class, box: o.box, polygon: o.polygon.map(([x, y]) => [round2(x), round2(y)]) })),
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const stream = createWriteStream(join(out, 'change_pairs.jsonl'));
  for (const line of lines) stream.write(`${line}\n`);
  await new Promise((resolve) => stream.end(resolve));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
