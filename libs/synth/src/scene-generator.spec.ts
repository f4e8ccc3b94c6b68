import { describe, expect, it } from 'vitest';
import { pointInPolygon } from './geometry';
import { generateScene, InvalidSceneOptionsError } from './scene-generator';
import { OBJECT_CLASSES, SCENE_CLASSES, type Scene } from './scene.types';

function variance(scene: Scene): number {
  let sum = 0;
  let sq = 0;
  for (const v of scene.rgb) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / scene.rgb.length;
  return sq / scene.rgb.length - mean * mean;
}

describe('generateScene', () => {
  it('gives identical bytes and graphs for the same seed', () => {
    const a = generateScene({ seed: 42 });
    const b = generateScene({ seed: 42 });
    expect(Buffer.from(a.rgb).equals(Buffer.from(b.rgb))).toBe(true);
    expect(JSON.stringify(a.objects)).toBe(JSON.stringify(b.objects));
    expect(a.sceneClass).toBe(b.sceneClass);
  });

  it('gives different images for different seeds, also within one class', () => {
    const images = [1, 2, 3, 4].map((seed) => Buffer.from(generateScene({ seed, sceneClass: 'meadow' }).rgb));
    for (let i = 0; i < images.length; i++) for (let j = i + 1; j < images.length; j++) expect(images[i].equals(images[j])).toBe(false);
  });

  it('draws every scene class from the seed when no class is given', () => {
    const seen = new Set(Array.from({ length: 120 }, (_, seed) => generateScene({ seed, size: 32 }).sceneClass));
    expect([...seen].sort()).toEqual([...SCENE_CLASSES].sort());
  });

  it.each(SCENE_CLASSES)('renders %s with texture and objects inside the image', (sceneClass) => {
    for (const seed of [7, 8, 9]) {
      const scene = generateScene({ seed, sceneClass });
      expect(scene.sceneClass).toBe(sceneClass);
      expect(scene.rgb.length).toBe(128 * 128 * 3);
      expect(variance(scene)).toBeGreaterThan(20);
      scene.objects.forEach((o, i) => {
        expect(o.id).toBe(i);
        expect(OBJECT_CLASSES).toContain(o.class);
        const [x1, y1, x2, y2] = o.box;
        expect(x1).toBeGreaterThanOrEqual(0);
        expect(y1).toBeGreaterThanOrEqual(0);
        expect(x2).toBeLessThanOrEqual(scene.width);
        expect(y2).toBeLessThanOrEqual(scene.height);
        expect(x2).toBeGreaterThan(x1);
        expect(y2).toBeGreaterThan(y1);
        for (const [x, y] of o.polygon) {
          expect(x).toBeGreaterThanOrEqual(x1 - 1e-6);
          expect(x).toBeLessThanOrEqual(x2 + 1e-6);
          expect(y).toBeGreaterThanOrEqual(y1 - 1e-6);
          expect(y).toBeLessThanOrEqual(y2 + 1e-6);
        }
      });
    }
  });

  it('puts the objects each class is about into its scenes', () => {
    const expected: Partial<Record<(typeof SCENE_CLASSES)[number], string>> = {
      dense_residential: 'building',
      farmland: 'field',
      forest: 'tree',
      river: 'river',
      lake: 'lake',
      beach: 'sea',
      parking_lot: 'car',
      airport: 'runway',
      industrial: 'building',
    };
    for (const [sceneClass, cls] of Object.entries(expected)) {
      for (const seed of [1, 2, 3]) {
        const scene = generateScene({ seed, sceneClass: sceneClass as (typeof SCENE_CLASSES)[number] });
        expect(scene.objects.some((o) => o.class === cls), `${sceneClass} seed ${seed}`).toBe(true);
      }
    }
  });

  it('paints boats inside the water they float on', () => {
    for (let seed = 0; seed < 20; seed++) {
      const scene = generateScene({ seed, sceneClass: 'beach' });
      const sea = scene.objects.find((o) => o.class === 'sea')!;
      for (const boat of scene.objects.filter((o) => o.class === 'boat')) {
        expect(boat.polygon.every((p) => pointInPolygon(p, sea.polygon))).toBe(true);
      }
    }
  });

  it('scales to other sizes', () => {
    const scene = generateScene({ seed: 3, size: 256, sceneClass: 'dense_residential' });
    expect(scene.rgb.length).toBe(256 * 256 * 3);
    expect(scene.metresPerPixel).toBe(0.25);
    expect(scene.objects.length).toBeGreaterThan(5);
  });

  it('rejects options that can never produce a scene', () => {
    expect(() => generateScene({ seed: 1, size: 10 })).toThrow(InvalidSceneOptionsError);
    expect(() => generateScene({ seed: Number.NaN })).toThrow(InvalidSceneOptionsError);
    expect(() => generateScene({ seed: 1, sceneClass: 'moon' as never })).toThrow(InvalidSceneOptionsError);
  });

  it('generates 200 scenes without pathological cases', () => {
    let objects = 0;
    for (let seed = 1000; seed < 1200; seed++) objects += generateScene({ seed }).objects.length;
    expect(objects).toBeGreaterThan(200);
  });
});
