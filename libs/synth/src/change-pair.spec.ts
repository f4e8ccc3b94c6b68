import { describe, expect, it } from 'vitest';
import { generateChangePair } from './change-pair';
import { generateScene } from './scene-generator';
import { SCENE_CLASSES } from './scene.types';

describe('generateChangePair', () => {
  it('keeps the unchanged scene identical to generateScene', () => {
    const pair = generateChangePair({ seed: 21, kind: 'added' });
    expect(Buffer.from(pair.before.rgb).equals(Buffer.from(generateScene({ seed: 21 }).rgb))).toBe(true);
  });

  it.each(SCENE_CLASSES)('changes only the named objects in %s', (sceneClass) => {
    for (const kind of ['added', 'removed'] as const) {
      const pair = generateChangePair({ seed: 5, sceneClass, kind });
      const [small, big] = kind === 'added' ? [pair.before, pair.after] : [pair.after, pair.before];
      expect(JSON.stringify(big.objects.slice(0, small.objects.length))).toBe(JSON.stringify(small.objects));
      const extra = big.objects.slice(small.objects.length);
      expect(pair.change.objectIds).toEqual(extra.map((o) => o.id));
      if (pair.change.kind === 'none') {
        expect(extra).toHaveLength(0);
        continue;
      }
      expect(pair.change.kind).toBe(kind);
      expect(extra.every((o) => o.class === pair.change.objectClass)).toBe(true);
      expect(Buffer.from(small.rgb).equals(Buffer.from(big.rgb))).toBe(false);
      const n = extra.length;
      expect(pair.caption).toMatch(new RegExp(`^(one|${n}) (new )?`));
      if (n > 1) expect(pair.caption.startsWith(`${n} `)).toBe(true);
      expect(pair.caption).toMatch(kind === 'added' ? /added|appear/ : /removed|disappeared/);
    }
  });

  it('says when nothing changed', () => {
    const pair = generateChangePair({ seed: 3, kind: 'none' });
    expect(pair.before).toBe(pair.after);
    expect(pair.caption).toMatch(/nothing|same|no change/);
  });
});
