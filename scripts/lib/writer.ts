// A client that keeps inserting rows into public.writes and remembers every id the server acknowledged, so a
// test or a demo can prove that no acknowledged write was lost across a promotion. Given both sides of a pair it
// follows the primary the way an application behind a switchover would: when a write fails it tries the next
// side, so the longest gap between two acknowledged writes is the write outage a client saw.
import { Client, type ClientConfig } from 'pg';
import type { LocalSiteDriver } from '../../activities/sites/local-driver';

export interface WriteTarget {
  driver: LocalSiteDriver;
  cluster: string;
}

export interface Writer {
  /** Ids whose INSERT returned success. */
  acknowledged: number[];
  failures: number;
  /** Longest time between two acknowledged writes, in ms. */
  longestGapMs(): number;
  stop(): Promise<void>;
}

/** Inserts ids firstId, firstId+1, ... so two writers (one per side of a failover) never collide. */
export async function startWriter(targets: WriteTarget[], everyMs = 20, firstId = 1): Promise<Writer> {
  let config: ClientConfig | null = await targets[0].driver.region.pgConfig(targets[0].cluster);
  let current = 0;
  const ackedAt: number[] = [];
  let running = true;
  const w: Writer = {
    acknowledged: [],
    failures: 0,
    longestGapMs: () => ackedAt.reduce((gap, t, i) => (i === 0 ? gap : Math.max(gap, t - ackedAt[i - 1])), 0),
    stop: async () => undefined,
  };
  let client: Client | null = null;
  let next = firstId;
  const loop = (async () => {
    while (running) {
      try {
        if (!config) config = await targets[current].driver.region.pgConfig(targets[current].cluster);
        if (!client) {
          client = new Client({ ...config, connectionTimeoutMillis: 1000 });
          client.on('error', () => undefined);
          await client.connect();
        }
        const id = next++;
        await client.query('INSERT INTO public.writes (id) VALUES ($1)', [id]);
        w.acknowledged.push(id);
        ackedAt.push(Date.now());
      } catch {
        w.failures++;
        const c = client as Client | null;
        client = null;
        await c?.end().catch(() => undefined);
        // The leader may have moved (a failover inside the cluster) or the other side may be the primary now.
        current = (current + 1) % targets.length;
        config = null;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  w.stop = async () => {
    running = false;
    await loop;
    await (client as Client | null)?.end().catch(() => undefined);
  };
  return w;
}
