// Delivery ids (and PagerDuty event ids) already used, kept on disk until their window has passed, so a request
// captured before a restart is still refused after it. One file per id, created exclusively: two bridges sharing
// the folder cannot both accept the same delivery.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

const PRUNE_EVERY_MS = 60_000;

export class ReplayStore {
  private lastPruneMs = 0;

  constructor(readonly dir: string) {
    // Fail at start, not at the first call, when the folder cannot be made.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private file(key: string): string {
    return join(this.dir, createHash('sha256').update(key).digest('hex'));
  }

  /** True when the key is new (and now kept until expiresAtMs), false when it was used before. */
  async claim(key: string, expiresAtMs: number, nowMs = Date.now()): Promise<boolean> {
    if (nowMs - this.lastPruneMs > PRUNE_EVERY_MS) await this.prune(nowMs);
    let fh;
    try {
      fh = await open(this.file(key), 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    try {
      await fh.writeFile(`${expiresAtMs}\n`);
      // On disk before the request is acted on: a crash right after must not forget it.
      await fh.datasync();
    } finally {
      await fh.close();
    }
    return true;
  }

  /** Forgets a key, so a sender may retry after the bridge failed on its side (a 5xx). */
  async release(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }

  /** Drops ids whose window has passed: the timestamp check refuses those requests on its own. */
  private async prune(nowMs: number): Promise<void> {
    this.lastPruneMs = nowMs;
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      const expiresAtMs = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isFinite(expiresAtMs) && expiresAtMs > 0 && expiresAtMs <= nowMs) await rm(path, { force: true });
    }
  }
}
