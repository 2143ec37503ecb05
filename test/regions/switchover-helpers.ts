// Helpers of switchover.test.ts: a private two-region layout on ports 30000-30299, SQL on a leader, a writer
// that records every acknowledged id, and WAL facts read with pg_waldump.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, type ClientConfig } from 'pg';
import type { LocalSiteDriver } from '../../activities/sites/local-driver';
import { copySecrets, privateRegions, sleep, sql, standbyOf, waitFor } from '../helpers/private-regions';
import { runCommand } from '../../activities/sites/local/walg-env';
import { pgBinDir } from '../../activities/sites/local/tools';
import { formatLsn, parseLsn } from '../../workflows/contracts/lsn';

const regions = privateRegions('switchover', 30000);
export const { tmp, credsFile, S3_PORT, s3Of, writeCredentials, driverFor, log } = regions;
export const startRegions = regions.start;
export const stopRegions = regions.stop;
export { copySecrets, sleep, sql, standbyOf, waitFor };

export async function waitForMarker(d: LocalSiteDriver, cluster: string, note: string, timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  await waitFor(`marker ${note} on ${cluster}`, timeoutMs, async () => {
    const r = await sql<{ n: number }>(d, cluster, 'select count(*)::int as n from marker where note = $1', [note]);
    return r[0].n === 1 ? true : null;
  });
  return Date.now() - t0;
}

export async function patroniNode(d: LocalSiteDriver, cluster: string): Promise<{ role: string; timeline?: number; name: string }> {
  const l = await d.region.leaderMember(cluster);
  if (!l) throw new Error(`${cluster} has no leader`);
  const node = (await (await fetch(`${l.restUrl}/patroni`)).json()) as { role: string; timeline?: number };
  return { ...node, name: l.name };
}

/** Inserts one row every `everyMs` on a fixed endpoint, and keeps only the ids the server acknowledged. */
export class Writer {
  readonly acked: number[] = [];
  readonly failed: number[] = [];
  lastAckAt = 0;
  private running = true;
  private loop: Promise<void>;

  constructor(private readonly cfg: ClientConfig, everyMs = 20) {
    this.loop = this.run(everyMs);
  }

  private async run(everyMs: number): Promise<void> {
    let client: Client | null = null;
    let next = 1;
    while (this.running) {
      const id = next++;
      try {
        if (!client) {
          client = new Client({ ...this.cfg, connectionTimeoutMillis: 1_000 });
          client.on('error', () => undefined);
          await client.connect();
        }
        await client.query('insert into writes(id) values ($1)', [id]);
        this.acked.push(id);
        this.lastAckAt = Date.now();
      } catch {
        this.failed.push(id);
        await client?.end().catch(() => undefined);
        client = null;
      }
      await sleep(everyMs);
    }
    await client?.end().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** The WAL record at `lsn` as pg_waldump reads it from a stopped member's pg_wal: its type and where it ends. */
export async function walRecordAt(
  dataDir: string,
  lsn: string,
): Promise<{ desc: string; endLsn: string; nextRecordLsn: string | null; line: string }> {
  // Two records asked for, as Patroni's rewind check does: the failure to read the second names where it would start.
  const r = await runCommand(join(pgBinDir(), 'pg_waldump'), ['-p', join(dataDir, 'pg_wal'), '-s', lsn, '-n', '2'], {}, { runAs: 'postgres' });
  const next = /invalid record length at ([0-9A-F]+\/[0-9A-F]+)/.exec(r.stderr);
  const line = r.stdout.split('\n').find((l) => l.startsWith('rmgr:')) ?? '';
  const m = /len \(rec\/tot\):\s*\d+\/\s*(\d+),.*lsn: ([0-9A-F]+\/[0-9A-F]+).*desc: (\S+)/.exec(line);
  if (!m) throw new Error(`pg_waldump at ${lsn}: ${r.stdout}${r.stderr}`);
  // Postgres 15 reports a replayed record's end as start + MAXALIGN(total length) (records are 8-byte aligned),
  // measured: a 114-byte CHECKPOINT_SHUTDOWN at 0/7000028 replays to 0/70000A0. Valid within one page.
  const start = parseLsn(m[2]);
  const end = start + ((BigInt(Number(m[1])) + 7n) & ~7n);
  if (start / 8192n !== (end - 1n) / 8192n) throw new Error(`record at ${lsn} crosses a page; compute its end by hand`);
  return { desc: m[3], endLsn: formatLsn(end), nextRecordLsn: next ? next[1] : null, line };
}

/** Lines of a Patroni log written after `since` (log lines start with an ISO-ish timestamp). */
export function patroniLogSince(file: string, since: Date): string[] {
  const text = readFileSync(file, 'utf8');
  return text.split('\n').filter((l) => {
    const t = Date.parse(l.slice(0, 23).replace(' ', 'T').replace(',', '.'));
    return !Number.isNaN(t) && t >= since.getTime() - 1000;
  });
}
