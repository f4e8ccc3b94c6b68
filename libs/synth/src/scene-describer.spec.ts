import { describe, expect, it } from 'vitest';
import { boxCentre, boxGap, polygonArea } from './geometry';
import { sideOfLine } from './relations';
import { areaBucket, describeScene, NOUNS, URBAN_SCENES } from './scene-describer';
import { generateScene } from './scene-generator';
import { OBJECT_CLASSES, SCENE_CLASSES, type ObjectClass, type Scene } from './scene.types';

const scenes: Scene[] = SCENE_CLASSES.flatMap((sceneClass, k) => [11, 12, 13].map((s) => generateScene({ seed: s * 100 + k, sceneClass })));
const countOf = (scene: Scene, cls: ObjectClass) => scene.objects.filter((o) => o.class === cls).length;
const mentions = (sentence: string, cls: ObjectClass) => NOUNS[cls].some((w) => new RegExp(`\\b${w}\\b`).test(sentence));

describe('describeScene', () => {
  it('is deterministic by seed', () => {
    const scene = generateScene({ seed: 5 });
    expect(describeScene(scene, 5)).toEqual(describeScene(generateScene({ seed: 5 }), 5));
  });

  it('names the scene class in the theme', () => {
    for (const scene of scenes) expect(describeScene(scene, scene.seed).theme).toContain(scene.sceneClass.replace('_', ' '));
  });

  it('states the count of every class present, and only of those', () => {
    for (const scene of scenes) {
      for (const text of [describeScene(scene, scene.seed).objects, ...describeScene(scene, scene.seed + 1).references]) {
        for (const cls of OBJECT_CLASSES) {
          const n = countOf(scene, cls);
          const sentences = text.split(' . ').filter((s) => mentions(s, cls) && /\b(\d+|one|single)\b/.test(s));
          if (n === 0) {
            expect(sentences, `${scene.sceneClass} ${cls}`).toHaveLength(0);
            continue;
          }
          expect(sentences.length, `${scene.sceneClass} ${cls}: ${text}`).toBeGreaterThanOrEqual(1);
          const word = sentences[0].match(/\b(\d+|one|single)\b/)![1];
          expect(word === 'one' || word === 'single' ? 1 : Number(word), `${cls}: ${sentences[0]}`).toBe(n);
        }
      }
    }
  });

  it('gives five different references, ordered theme → objects → relations', () => {
    for (const scene of scenes) {
      const d = describeScene(scene, scene.seed);
      expect(d.references).toHaveLength(5);
      expect(new Set(d.references).size).toBe(5);
      expect(d.references[0]).toBe(`${d.theme} ${d.objects} ${d.relations}`);
      for (const r of d.references) expect(r).toMatch(/^[a-z0-9 ,.]+$/);
    }
  });

  it('answers the questions from the scene graph', () => {
    for (const scene of scenes) {
      const d = describeScene(scene, scene.seed);
      expect(new Set(d.vqa.map((q) => q.type))).toEqual(new Set(['presence', 'count', 'comparison', 'rural_urban', 'area']));
      const classIn = (q: string) => OBJECT_CLASSES.filter((c) => q.includes(` ${NOUNS[c][1]} `) || q.includes(` ${NOUNS[c][0]} `));
      for (const { question, answer, type } of d.vqa) {
        const named = classIn(question);
        if (type === 'presence') expect(answer).toBe(countOf(scene, named[0]) > 0 ? 'yes' : 'no');
        if (type === 'count') expect(answer).toBe(String(countOf(scene, named[0])));
        if (type === 'rural_urban') expect(answer).toBe(URBAN_SCENES.has(scene.sceneClass) ? 'urban' : 'rural');
        if (type === 'area') {
          const m2 = scene.objects.filter((o) => o.class === named[0]).reduce((s, o) => s + polygonArea(o.polygon), 0) * scene.metresPerPixel ** 2;
          expect(answer).toBe(areaBucket(m2));
        }
        if (type === 'comparison') {
          const m = question.match(/more (.+) than (.+) \?|number of (.+) equal to the number of (.+) \?/)!;
          const [a, b] = (m[1] ? [m[1], m[2]] : [m[3], m[4]]).map((w) => OBJECT_CLASSES.find((c) => NOUNS[c][1] === w)!);
          expect(answer).toBe((m[1] ? countOf(scene, a) > countOf(scene, b) : countOf(scene, a) === countOf(scene, b)) ? 'yes' : 'no');
        }
      }
    }
  });

  it('writes relations that hold for the boxes', () => {
    let checked = 0;
    for (let seed = 0; seed < 120; seed++) {
      const scene = generateScene({ seed });
      const byId = (id: number) => scene.objects[id];
      const d = describeScene(scene, seed);
      for (const r of d.relationFacts) {
        checked++;
        const subjects = r.subjectIds.map(byId);
        const objects = r.objectIds.map(byId);
        expect(subjects.every((o) => o.class === r.subject)).toBe(true);
        expect(objects.every((o) => o.class === r.object)).toBe(true);
        const [a, b] = [subjects[0], objects[0]];
        switch (r.predicate) {
          case 'left_of':
            expect(a.box[2]).toBeLessThanOrEqual(b.box[0]);
            break;
          case 'right_of':
            expect(a.box[0]).toBeGreaterThanOrEqual(b.box[2]);
            break;
          case 'above':
            expect(a.box[3]).toBeLessThanOrEqual(b.box[1]);
            break;
          case 'below':
            expect(a.box[1]).toBeGreaterThanOrEqual(b.box[3]);
            break;
          case 'next_to':
            expect(boxGap(a.box, b.box)).toBeLessThanOrEqual(8);
            break;
          case 'on':
            for (const s of subjects) {
              const [x, y] = boxCentre(s.box);
              expect(x >= b.box[0] && x <= b.box[2] && y >= b.box[1] && y <= b.box[3]).toBe(true);
            }
            break;
          case 'along':
            for (const s of subjects) expect(boxGap(s.box, b.box)).toBeLessThanOrEqual(60);
            break;
          case 'between': {
            const sides = new Set(objects.map((o) => sideOfLine(boxCentre(o.box), a.line!)));
            expect(sides.size).toBe(2);
            break;
          }
          case 'surrounded_by': {
            const [cx, cy] = boxCentre(a.box);
            const quadrants = new Set(objects.map((o) => {
              const [x, y] = boxCentre(o.box);
              return `${x < cx}${y < cy}`;
            }));
            expect(quadrants.size).toBeGreaterThanOrEqual(3);
            break;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
  });

  it('mentions a relation in the caption for each kind of fact found', () => {
    const scene = generateScene({ seed: 4, sceneClass: 'lake' });
    const d = describeScene(scene, 4);
    if (d.relationFacts.some((r) => r.predicate === 'surrounded_by')) expect(d.relations).toMatch(/surround/);
    const river = generateScene({ seed: 4, sceneClass: 'river' });
    expect(describeScene(river, 4).relations).toMatch(/river/);
  });
});
