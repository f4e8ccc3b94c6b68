import sharp from 'sharp';
import type { Scene } from './scene.types';

/** PNG bytes of a scene's image (sharp, lossless). */
export async function encodePng(scene: Pick<Scene, 'rgb' | 'width' | 'height'>): Promise<Buffer> {
  return sharp(Buffer.from(scene.rgb.buffer, scene.rgb.byteOffset, scene.rgb.byteLength), {
    raw: { width: scene.width, height: scene.height, channels: 3 },
  })
    .png({ compressionLevel: 6 })
    .toBuffer();
}
