import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@rsmoe/observability';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskCall } from '../../../gateway/src/adapters/router.port';
import { createGatewayApp, type GatewayApp } from '../../../gateway/src/gateway.app';
import type { GatewayConfig } from '../../../gateway/src/gateway.config';
import type { TaskAnswer } from '../../../gateway/src/tasks/task-answer';
import { cannedTaskResult, FakeRouter, images, testConfig } from '../../../gateway/src/testing/gateway-test-kit';
import { BOX_COLOUR, CHANGE_COLOUR, CLASS_PALETTE } from '../overlays/palette';
import { REPO_ROOT, type CliRun } from './cli-test-harness';
import type { TaskAnswerView } from './task-client';

// Fails to compile when the gateway's answer no longer has the shape the CLI reads.
const _answerFits = (answer: TaskAnswer): TaskAnswerView => answer;

/** Runs the real CLI (bin/rsmoe.cjs, so main.ts's registration too) in a child process. */
function rsmoe(args: string[]): Promise<CliRun> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/rsmoe.cjs', ...args], { cwd: REPO_ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A port nothing listens on: one the system just gave out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}

async function pixels(file: string) {
  const { data, info } = await sharp(readFileSync(file)).raw().toBuffer({ resolveWithObject: true });
  return { info, at: (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)] };
}

const blend = (colour: number, image: number) => Math.round((colour * 128 + image * 127) / 255);
const GREEN = [0x3a, 0x6b, 0x35];
const BLUE = [0x22, 0x33, 0x44];
const BOX = [BOX_COLOUR.r, BOX_COLOUR.g, BOX_COLOUR.b];

/** The task commands against an in-process gateway (real HTTP and Redis, the fake router's canned answers). */
describe('rsmoe classify, ground, refer, segment, changes', () => {
  const silent = createLogger('gateway', { level: 'error', write: () => {} });
  const dir = mkdtempSync(join(tmpdir(), 'rsmoe-tasks-'));
  const path = (name: string) => join(dir, name);
  let config: GatewayConfig;
  let redis: Redis;
  let router: FakeRouter;
  let gateway: GatewayApp;
  let url: string;

  beforeAll(async () => {
    config = testConfig();
    redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
    router = new FakeRouter();
    gateway = await createGatewayApp(config, { router, redis, logger: silent });
    url = await gateway.listen();
    // 40×20 '#3a6b35' (green) and the same size in '#223344' (blue).
    writeFileSync(path('scene.png'), await images.png(40, 20));
    writeFileSync(path('after.png'), await sharp({ create: { width: 40, height: 20, channels: 3, background: '#223344' } }).png().toBuffer());
  });

  afterAll(async () => {
    await gateway?.close();
    const keys = await redis.keys(`${config.KEY_PREFIX}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  beforeEach(() => {
    router.behaviour = undefined;
  });

  /** The router call of the request a text answer names on its `Request <id>` line. */
  function callOf(stdout: string): TaskCall {
    const requestId = /^Request (\S+) · \d+ ms · pack test-pack@0\.0\.1$/m.exec(stdout)?.[1];
    const call = router.calls.find((entry) => entry.call.requestId === requestId)?.call;
    expect(call, `a router call for request ${requestId}`).toBeDefined();
    return call as TaskCall;
  }

  it('classify prints the label and the request line; --json prints the answer as sent', async () => {
    const text = await rsmoe(['classify', path('scene.png'), '--url', url]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(/^Label: farmland\nRequest \S+ · \d+ ms · pack test-pack@0\.0\.1\n$/);
    expect(callOf(text.stdout)).toMatchObject({ task: 'classification', images: [{ mediaType: 'image/png' }] });
    const json = await rsmoe(['classify', path('scene.png'), '--url', url, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ task: 'classification', label: 'farmland', requestId: expect.any(String), experts: expect.any(Array) });
  });

  it('ground sends the phrase, prints each box in pixels, and draws the boxes over the image', async () => {
    const run = await rsmoe(['ground', path('scene.png'), '--query', 'the runway', '--url', url, '--out', path('ground.png')]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    // The canned box is [25, 25, 75, 50] percent of the 40×20 image.
    expect(run.stdout).toContain(`Query: the runway\nBoxes (px, x1,y1,x2,y2): 1\n   1  10,5,30,10\nOverlay: ${path('ground.png')}\n`);
    expect(callOf(run.stdout)).toMatchObject({ task: 'grounding', query: 'the runway' });
    const overlay = await pixels(path('ground.png'));
    expect(overlay.info).toMatchObject({ width: 40, height: 20 });
    expect([overlay.at(10, 9), overlay.at(29, 9), overlay.at(29, 6)]).toEqual([BOX, BOX, BOX]);
    expect([overlay.at(15, 7), overlay.at(35, 15)]).toEqual([GREEN, GREEN]);
  });

  it('refer sends the box in pixels or [0, 1], prints the description and the box, and draws the box', async () => {
    const px = await rsmoe(['refer', path('scene.png'), '--box', '4,2,20,10', '--url', url, '--out', path('refer.png')]);
    expect(px).toMatchObject({ code: 0, stderr: '' });
    expect(px.stdout).toContain('Description: a storage tank.\nBox (px, x1,y1,x2,y2): 4,2,20,10\n');
    expect(callOf(px.stdout).box).toEqual({ x1: 10, y1: 10, x2: 50, y2: 50 });
    const overlay = await pixels(path('refer.png'));
    expect([overlay.at(4, 2), overlay.at(19, 9)]).toEqual([BOX, BOX]);
    expect([overlay.at(10, 5), overlay.at(3, 2)]).toEqual([GREEN, GREEN]);
    const norm = await rsmoe(['refer', path('scene.png'), '--box', '0.1,0.1,0.5,0.5', '--units', 'norm', '--url', url]);
    expect(norm.code).toBe(0);
    expect(norm.stdout).toContain('Box (px, x1,y1,x2,y2): 4,2,20,10\n');
    expect(callOf(norm.stdout).box).toEqual({ x1: 10, y1: 10, x2: 50, y2: 50 });
  });

  it('segment prints each class area, blends a colour per class (background clear) and writes the label PNG as received', async () => {
    const run = await rsmoe(['segment', path('scene.png'), '--classes', 'building, water', '--url', url, '--out', path('segment.png'), '--mask-out', path('mask.png')]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain(['Classes (area of the image):', '  others     50.00 %', '  building   50.00 %  #e6194b', '  water       0.00 %  #3cb44b'].join('\n'));
    expect(callOf(run.stdout).classes).toEqual(['building', 'water']);
    // The canned 2×2 grid [0 1; 1 0]: the top-right and bottom-left quarters are building.
    const overlay = await pixels(path('segment.png'));
    const building = CLASS_PALETTE[0];
    expect(overlay.at(39, 0)).toEqual([blend(building.r, GREEN[0]), blend(building.g, GREEN[1]), blend(building.b, GREEN[2])]);
    expect([overlay.at(0, 0), overlay.at(39, 19)]).toEqual([GREEN, GREEN]);
    const { data } = await sharp(readFileSync(path('mask.png'))).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect([data[0], data[39], data[20 * 40 - 1]]).toEqual([0, 1, 0]);

    const json = await rsmoe(['segment', path('scene.png'), '--query', 'the roofs', '--url', url, '--json', '--mask-out', path('mask-query.png')]);
    expect(json.code).toBe(0);
    const answer = JSON.parse(json.stdout) as TaskAnswer;
    expect(answer.mask!.classes.map((entry) => entry.name)).toEqual(['others', 'the roofs']);
    expect(readFileSync(path('mask-query.png')).equals(Buffer.from(answer.mask!.png, 'base64'))).toBe(true);
  });

  it('changes prints the caption and the changed fraction, and writes both images side by side with the changes highlighted', async () => {
    const run = await rsmoe(['changes', path('scene.png'), path('after.png'), '--url', url, '--out', path('changes.png'), '--mask-out', path('change-mask.png')]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain('Caption: two buildings were built.\nChanged: 50.00 % of the pixels\n');
    const call = callOf(run.stdout);
    expect(call).toMatchObject({ task: 'change', changeOutput: 'both' });
    expect(call.images[0].sha256).not.toBe(call.images[1].sha256);
    const overlay = await pixels(path('changes.png'));
    expect(overlay.info).toMatchObject({ width: 80, height: 20 });
    expect([overlay.at(0, 0), overlay.at(39, 0)]).toEqual([GREEN, GREEN]);
    // The canned change mask [0 1; 1 0]: after's top-right quarter changed, its top-left did not.
    expect(overlay.at(40 + 39, 0)).toEqual([blend(CHANGE_COLOUR.r, BLUE[0]), blend(CHANGE_COLOUR.g, BLUE[1]), blend(CHANGE_COLOUR.b, BLUE[2])]);
    expect(overlay.at(40, 0)).toEqual(BLUE);
    expect(existsSync(path('change-mask.png'))).toBe(true);

    const caption = await rsmoe(['changes', path('scene.png'), path('after.png'), '--url', url, '--output', 'caption']);
    expect(caption.code).toBe(0);
    expect(caption.stdout).toMatch(/^Caption: two buildings were built\.\nRequest /);
    expect(callOf(caption.stdout).changeOutput).toBe('caption');
  });

  it('changes without a mask in a degraded answer prints what came and says on stderr that the overlay was not written', async () => {
    router.behaviour = async (call) => {
      const result = cannedTaskResult(call as TaskCall);
      const failed = { ...result.experts[0], expertId: 'pixel', status: 'timed_out' as const, errorCode: 'deadline_exceeded' as const, text: '' };
      return { ...result, mask: undefined, degraded: true, missingExperts: ['pixel'], experts: [...result.experts, failed] };
    };
    const run = await rsmoe(['changes', path('scene.png'), path('after.png'), '--url', url, '--out', path('degraded.png')]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Caption: two buildings were built.\nChanged: (no mask)\nDegraded: missing pixel\nRequest ');
    expect(run.stderr).toBe(`changes: the answer has no change mask (degraded: missing pixel); not written: ${path('degraded.png')}\n`);
    expect(existsSync(path('degraded.png'))).toBe(false);
  });

  it('a refusal by the gateway is one line on stderr with its code and request id, exit status 2', async () => {
    const calls = router.calls.length;
    const run = await rsmoe(['refer', path('scene.png'), '--box', '0,0,50,10', '--url', url, '--out', path('refused.png')]);
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toMatch(/^rsmoe: \[invalid_field\] box \[0, 0, 50, 10\] is outside the image \(40×20 px\) \(request \S+\)\n$/);
    expect(router.calls.length).toBe(calls);
    expect(existsSync(path('refused.png'))).toBe(false);
    const closed = `http://127.0.0.1:${await closedPort()}`;
    const unreachable = await rsmoe(['classify', path('scene.png'), '--url', closed]);
    expect(unreachable).toMatchObject({ code: 2, stdout: '' });
    expect(unreachable.stderr).toBe(
      `rsmoe: [network_error] no gateway answered at ${closed} (connection refused): start one with \`npm start\`, or point --url / RSMOE_URL at yours\n`,
    );
  });

  it('bad input is refused before any request: one line on stderr, exit status 2', async () => {
    const calls = router.calls.length;
    const [missing, neither, captionOnly, badBox] = await Promise.all([
      rsmoe(['classify', path('nope.png'), '--url', url]),
      rsmoe(['segment', path('scene.png'), '--url', url]),
      rsmoe(['changes', path('scene.png'), path('after.png'), '--output', 'caption', '--out', path('x.png'), '--url', url]),
      rsmoe(['refer', path('scene.png'), '--box', '1,2,3', '--url', url]),
    ]);
    expect(missing).toMatchObject({ code: 2, stdout: '' });
    expect(missing.stderr).toMatch(/^classify: cannot read image \S+nope\.png: ENOENT[^\n]*\n$/);
    expect(neither).toMatchObject({ code: 2, stdout: '', stderr: 'segment: give --classes a,b or --query <text> (or both)\n' });
    expect(captionOnly).toMatchObject({ code: 2, stdout: '', stderr: 'changes: --out and --mask-out need the change mask: use --output mask or both\n' });
    expect(badBox).toMatchObject({ code: 2, stdout: '' });
    expect(badBox.stderr.split('\n')[0]).toBe("error: option '--box <x1,y1,x2,y2>' argument '1,2,3' is invalid. expected four numbers x1,y1,x2,y2");
    expect(router.calls.length).toBe(calls);
  });
});
