import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SceneFileStore } from './scene-files.adapter';
import type { SceneStateStore } from './scene-state.adapter';

/**
 * Frees the disk of scenes whose state Redis no longer holds (their result TTL passed, or they were never
 * accepted): the scene store outlives nothing it serves. A directory is removed only when nothing in it was
 * written for `graceMs`, so an upload still streaming in (its state is created once it has arrived) is spared.
 */
export class SceneStoreSweeper {
  constructor(
    private readonly files: SceneFileStore,
    private readonly state: SceneStateStore,
    private readonly graceMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** One pass over the store; returns the scene ids removed. */
  async sweepOnce(): Promise<string[]> {
    const removed: string[] = [];
    for (const sceneId of await this.files.list()) {
      if ((await this.state.status(sceneId)) !== undefined) continue;
      if (this.now() - (await this.lastWrite(sceneId)) < this.graceMs) continue;
      await this.files.remove(sceneId);
      removed.push(sceneId);
    }
    return removed;
  }

  private async lastWrite(sceneId: string): Promise<number> {
    const dir = this.files.dir(sceneId);
    let latest = (await stat(dir)).mtimeMs;
    for (const name of await readdir(dir)) {
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (info) latest = Math.max(latest, info.mtimeMs);
    }
    return latest;
  }
}
