// A client that keeps inserting rows into public.writes and remembers every id the server acknowledged, so a
// test or a demo can prove that no acknowledged write was lost across a promotion.
import { Client } from 'pg';
import type { LocalSiteDriver } from '../../activities/sites/local-driver';

export interface Writer {
  /** Ids whose INSERT returned success. */
  acknowledged: number[];
  failures: number;
  stop(): Promise<void>;
}

/** Inserts ids firstId, firstId+1, ... so two writers (one per side of a failover) never collide. */
export async function startWriter(driver: LocalSiteDriver, cluster: string, everyMs = 20, firstId = 1): Promise<Writer> {
  const config = await driver.region.pgConfig(cluster);
  const w: Writer & { running: boolean } = { acknowledged: [], failures: 0, running: true, stop: async () => undefined };
  let client: Client | null = null;
  let next = firstId;
  const loop = (async () => {
    while (w.running) {
      try {
        if (!client) {
          client = new Client({ ...config, connectionTimeoutMillis: 1000 });
          client.on('error', () => undefined);
          await client.connect();
        }
        const id = next++;
        await client.query('INSERT INTO public.writes (id) VALUES ($1)', [id]);
        w.acknowledged.push(id);
      } catch {
        w.failures++;
        const c = client as Client | null;
        client = null;
        await c?.end().catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  w.stop = async () => {
    w.running = false;
    await loop;
    await (client as Client | null)?.end().catch(() => undefined);
  };
  return w;
}
