import { describe, expect, it } from 'vitest';
import { generateChangePair } from './change-pair';
import { changedPixelMap, objectClassMap } from './label-maps';
import { generateScene } from './scene-generator';
import { OBJECT_CLASSES } from './scene.types';

describe('label maps', () => {
  it('marks each object with its class where it is topmost, and leaves bare ground 0', () => {
    const scene = generateScene({ seed: 7, sceneClass: 'parking_lot' });
    const map = objectClassMap(scene);
    expect(map.length).toBe(scene.width * scene.height);
    const last = scene.objects.at(-1)!;
    // The centre pixel of the topmost object's box is inside its polygon for the convex shapes of a parking lot.
    const [x1, y1, x2, y2] = last.box;
    const cx = Math.floor((x1 + x2) / 2);
    const cy = Math.floor((y1 + y2) / 2);
    expect(map[cy * scene.width + cx]).toBe(OBJECT_CLASSES.indexOf(last.class) + 1);
    const present = new Set(map);
    for (const value of present) if (value > 0) expect(scene.objects.some((o) => OBJECT_CLASSES.indexOf(o.class) + 1 === value)).toBe(true);
  });

  it('a change map covers the changed objects only, and is empty when nothing changed', () => {
    const added = generateChangePair({ seed: 3, sceneClass: 'dense_residential', kind: 'added' });
    const map = changedPixelMap(added);
    const changed = map.reduce((sum, v) => sum + v, 0);
    const boxArea = added.change.objectIds.reduce((sum, id) => {
      const [x1, y1, x2, y2] = added.after.objects[id].box;
      return sum + (x2 - x1) * (y2 - y1);
    }, 0);
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThanOrEqual(boxArea + 4 * added.change.objectIds.length * added.after.width);
    const none = generateChangePair({ seed: 3, sceneClass: 'dense_residential', kind: 'none' });
    expect(changedPixelMap(none).every((v) => v === 0)).toBe(true);
  });
});
