import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { VlmRuntime, decodeImage } from './libs/runtime/src';
async function main() {
const dir = 'models/fixtures/hf-reference/llava-onevision-tiny';
const rt = await VlmRuntime.load(dir, { executionProvider: 'cpu', intraOpThreads: 1, logger: { info() {}, warn() {} } });
const img = new Uint8Array(readFileSync(dir + '/images/airport_32.png'));
const feats = await rt.encodeImages([await decodeImage(img)], { imagesInPrompt: 1 });
const B = Number(process.env.B ?? 1);
const reqs = Array.from({length: B}, () => ({ prompt: 'Describe this aerial image in one sentence.', imageFeatures: feats, options: { maxNewTokens: 32 } }));
for (let i = 0; i < 100; i++) await rt.generate(reqs);
const s = new Session(); s.connect(); await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 50 }); await s.post('Profiler.start');
for (let i = 0; i < 400; i++) await rt.generate(reqs);
const { profile } = await s.post('Profiler.stop') as any;
writeFileSync('/tmp/gen.cpuprofile', JSON.stringify(profile));
}
main();
