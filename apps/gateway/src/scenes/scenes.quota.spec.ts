import 'reflect-metadata';
import { mkdtempSync, openAsBlob, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiKeyId, createRedisKeys, utcDay } from '@rsmoe/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTiledGeoTiff } from '../../../../libs/scenes/test-support/tiled-geotiff';
import { createTestApiKey, startTestGateway, type TestGateway } from '../testing/gateway-test-kit';

/** A daily quota counts one image per tile of a scene: all its tiles are reserved before anything is queued. */
describe('whole scenes and API-key quotas (AUTH_MODE=required)', () => {
  let t: TestGateway;
  let dir: string;
  let sceneFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rsmoe-scene-quota-'));
    sceneFile = join(dir, 'scene.tif');
    // 512 × 512 in 128-pixel tiles without overlap: 16 tiles.
    writeTiledGeoTiff(sceneFile, { width: 512, height: 512, bands: 3, tileSide: 128, pixels: (_x, _y, w, h) => new Uint8Array(w * h * 3).map((_, i) => (i * 37) % 251) });
    t = await startTestGateway({ AUTH_MODE: 'required', SCENE_STORE_DIR: join(dir, 'store') });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const submit = async (secret: string) => {
    const form = new FormData();
    form.append('tasks', 'caption');
    form.append('tileSize', '128');
    form.append('overlap', '0');
    form.append('scene', await openAsBlob(sceneFile), 'scene.tif');
    const response = await fetch(`${t.base}/v1/scenes`, { method: 'POST', headers: { authorization: `Bearer ${secret}` }, body: form });
    return { response, body: (await response.json()) as { sceneId?: string; error?: { code: string; message: string } } };
  };
  const usedToday = async (secret: string) => Number((await t.redis.get(createRedisKeys(t.config.KEY_PREFIX).dailyUsageKey(apiKeyId(secret), utcDay(Date.now())))) ?? 0);

  it('refuses a scene with more tiles than the key has images left today: 429 quota_exceeded, nothing stored or queued', async () => {
    const secret = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'scene-small', dailyQuota: 10 });
    const { response, body } = await submit(secret);
    expect(response.status).toBe(429);
    expect(body.error?.code).toBe('quota_exceeded');
    expect(body.error?.message).toMatch(/this scene is 16 tiles.*10 of 10 left today/);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await usedToday(secret)).toBe(0);
    expect(await t.redis.keys(`${t.config.KEY_PREFIX}:scene:*`)).toEqual([]);
  });

  it('reserves one image per tile of an accepted scene, and gives back the tiles a cancel left unprocessed', async () => {
    const secret = await createTestApiKey(t.redis, t.config.KEY_PREFIX, { name: 'scene-big', dailyQuota: 100 });
    const { response, body } = await submit(secret);
    expect(response.status, JSON.stringify(body)).toBe(202);
    expect(await usedToday(secret)).toBe(16);
    // No scene worker runs here: cancelled while queued, none of its tiles was processed.
    const cancel = await fetch(`${t.base}/v1/scenes/${body.sceneId}`, { method: 'DELETE', headers: { authorization: `Bearer ${secret}` } });
    expect(cancel.status).toBe(202);
    expect(await usedToday(secret)).toBe(0);
  });
});
