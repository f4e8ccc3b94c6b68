import { describe, expect, it } from 'vitest';
import { anyresLayout, bilinearResize, packImageFeatures, patchOutputSize, selectBestResolution } from './anyres';

const PINPOINTS = [
  [32, 32], [32, 64], [64, 32], [64, 64], [64, 96], [96, 64], [96, 96], [96, 128], [128, 96], [128, 128],
].map(([height, width]) => ({ height, width }));
const settings = { cropSize: 32, side: 3, pinpoints: PINPOINTS, maxCrops: 9 };

describe('anyres as transformers computes it (the hf-reference LLaVA-OneVision numbers)', () => {
  it('picks the resolution that keeps the most pixels, ties to the least waste', () => {
    expect(selectBestResolution({ height: 32, width: 32 }, PINPOINTS)).toEqual({ height: 32, width: 32 });
    expect(selectBestResolution({ height: 110, width: 128 }, PINPOINTS)).toEqual({ height: 128, width: 128 });
    // 32×64 would shrink it; 64×96 keeps every pixel with the least waste among those that do.
    expect(selectBestResolution({ height: 30, width: 70 }, PINPOINTS)).toEqual({ height: 64, width: 96 });
  });

  it('resizes to fit keeping the aspect ratio', () => {
    expect(patchOutputSize({ height: 110, width: 128 }, { height: 128, width: 128 })).toEqual({ height: 110, width: 128 });
    expect(patchOutputSize({ height: 50, width: 20 }, { height: 96, width: 64 })).toEqual({ height: 96, width: 39 });
  });

  it('gives 21 tokens for a 32×32 image and 89 for 110×128 (unpad 12×12 → 10×12, downscale to 8×9)', () => {
    expect(anyresLayout({ height: 32, width: 32 }, settings).tokens).toBe(21);
    const layout = anyresLayout({ height: 110, width: 128 }, settings);
    expect(layout).toMatchObject({ gridRows: 4, gridCols: 4, unpadded: { height: 10, width: 12 }, top: 1, packed: { height: 8, width: 9 } });
    expect(layout.tokens).toBe(89);
  });

  it('packs base features, then each grid row followed by the newline', () => {
    // Two crops of a 1-feature-wide toy: side 1, so a 1×1 grid; values name their crop and row.
    const crops = Float32Array.of(10, 11, /* crop 0: feature, newline */ 20, 11 /* crop 1 */);
    const layout = anyresLayout({ height: 32, width: 32 }, { ...settings, side: 1 });
    expect([...packImageFeatures(crops, 2, 2, 1, layout, 1)]).toEqual([10, 20, 11]);
    // One crop (a several-image prompt): base features and the newline.
    expect([...packImageFeatures(crops.subarray(0, 2), 1, 2, 1, null, 1)]).toEqual([10, 11]);
  });

  it('bilinear resize matches torch (align_corners=False, no antialias) on a small map', () => {
    const map = Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8); // 3×3, depth 1
    const out = bilinearResize(map, { height: 3, width: 3 }, { height: 2, width: 2 }, 1);
    // torch.nn.functional.interpolate(torch.arange(9.).view(1,1,3,3), size=(2,2), mode='bilinear')
    expect([...out]).toEqual([1, 2.5, 5.5, 7]);
  });
});
