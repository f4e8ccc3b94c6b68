import { mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isSceneId } from '@rsmoe/contracts';

/** The scene store's default place, relative to the repository (gateway and scene worker read the same SCENE_STORE_DIR). */
export const DEFAULT_SCENE_STORE_SUBDIR = 'var/scenes';

/** Name of a scene's uploaded file in its directory. */
export const SCENE_SOURCE_FILE = 'scene.tif';
const RESULT_FILE = 'result.json';
const PREVIEW_FILE = 'preview.png';

/**
 * The scene store: one directory per scene under `root` (a local directory or a volume shared by the gateway
 * and the scene workers; never Redis, which runs with noeviction). The upload is streamed into it, the result
 * and preview written next to it. Files are written to a temporary name and renamed, so a reader never sees half
 * a file.
 */
export class SceneFileStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  dir(sceneId: string): string {
    if (!isSceneId(sceneId)) throw new RangeError(`not a scene id: ${JSON.stringify(sceneId)}`);
    return join(this.root, sceneId);
  }

  sourcePath(sceneId: string): string {
    return join(this.dir(sceneId), SCENE_SOURCE_FILE);
  }

  previewPath(sceneId: string): string {
    return join(this.dir(sceneId), PREVIEW_FILE);
  }

  async prepare(sceneId: string): Promise<string> {
    await mkdir(this.dir(sceneId), { recursive: true });
    return this.sourcePath(sceneId);
  }

  /** The first bytes of the uploaded file (its magic number). */
  async head(sceneId: string, bytes = 16): Promise<Uint8Array> {
    const handle = await open(this.sourcePath(sceneId), 'r');
    try {
      const buffer = Buffer.alloc(bytes);
      const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async writeResult(sceneId: string, result: unknown, preview?: Buffer): Promise<void> {
    if (preview) await this.atomicWrite(this.previewPath(sceneId), preview);
    await this.atomicWrite(join(this.dir(sceneId), RESULT_FILE), Buffer.from(JSON.stringify(result)));
  }

  async readResult(sceneId: string): Promise<unknown> {
    try {
      return JSON.parse(await readFile(join(this.dir(sceneId), RESULT_FILE), 'utf8')) as unknown;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async readPreview(sceneId: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.previewPath(sceneId));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** The uploaded file is no longer needed (the scene is done or cancelled); result and preview stay. */
  async removeSource(sceneId: string): Promise<void> {
    await rm(this.sourcePath(sceneId), { force: true });
  }

  async remove(sceneId: string): Promise<void> {
    await rm(this.dir(sceneId), { recursive: true, force: true });
  }

  /** Scene directories present in the store. */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.root)).filter(isSceneId);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  private async atomicWrite(path: string, bytes: Buffer): Promise<void> {
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  }
}
