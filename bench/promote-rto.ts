// Time to writable: the promote runbook, approved by the bench as soon as its gate opens,
// next to a raw Patroni `PATCH /config {"standby_cluster": null}` on the same sandbox, over fresh standby pairs.
// Run against a running sandbox: `./scripts/sandbox up && npx tsx bench/promote-rto.ts [rounds]`.
// Prints a table; asserts nothing (speed belongs here, not in tests).
import { Client as PgClient } from 'pg';
import type { Client } from '@temporalio/client';
import { startRunbook } from '../scripts/lib/runbook-client';
import { RUNBOOK_NAMES, type PromoteInput, type PromoteResult } from '../workflows/contracts/runbooks';
import { createStandbyPair, deleteStandbyPair } from '../test/helpers/standby-pair';
import { driverOf } from '../test/helpers/clusters';
import { approveAsSandboxPeople, printTable, rounds as roundsArg, sandboxClient, sleep } from './lib';

const rounds = roundsArg(3);

/** Polls with INSERTs until one is accepted: the moment the cluster is writable for a client. */
async function firstWrite(ref: string, t0: number): Promise<number> {
  const { driver, cluster } = driverOf(ref);
  for (;;) {
    try {
      const cfg = await driver.region.pgConfig(cluster);
      const c = new PgClient({ ...cfg, connectionTimeoutMillis: 1000 });
      await c.connect();
      try {
        await c.query('INSERT INTO public.writes (id) VALUES ($1)', [-Date.now()]);
        return Date.now() - t0;
      } finally {
        await c.end();
      }
    } catch {
      await sleep(20);
    }
  }
}

async function rawPatch(ref: string): Promise<number> {
  const { driver, cluster } = driverOf(ref);
  const url = driver.region.patroniUrl(cluster);
  const t0 = Date.now();
  const r = await fetch(`${url}/config`, { method: 'PATCH', body: JSON.stringify({ standby_cluster: null }) });
  if (!r.ok) throw new Error(`PATCH /config answered ${r.status}`);
  return firstWrite(ref, t0);
}

async function runbook(client: Client, ref: string): Promise<{ rtoMs: number; totalMs: number; phases: Record<string, number> }> {
  const t0 = Date.now();
  const input: PromoteInput = {
    cluster: ref, mode: 'planned', takeBackup: false,
  };
  const handle = await startRunbook(client, { workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: ref, input });
  // The bench approves as soon as the gate opens (promote takes no approval in its input).
  await approveAsSandboxPeople(handle, 'BENCH');
  const result = (await handle.result()) as PromoteResult;
  return { rtoMs: result.rtoMs!, totalMs: Date.now() - t0, phases: result.phaseDurationsMs };
}

async function main(): Promise<void> {
  const client = await sandboxClient();
  const raw: number[] = [];
  const rto: number[] = [];
  const total: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const a = await createStandbyPair(`bench-raw${i}`);
    raw.push(await rawPatch(a.standby));
    await deleteStandbyPair(a);
    const b = await createStandbyPair(`bench-rb${i}`);
    const r = await runbook(client, b.standby);
    rto.push(r.rtoMs);
    total.push(r.totalMs);
    console.log(`round ${i + 1}: raw PATCH -> writable ${raw[i]} ms; runbook approval -> writable ${r.rtoMs} ms (whole run ${r.totalMs} ms: ${JSON.stringify(r.phases)})`);
    await deleteStandbyPair(b);
  }
  await client.connection.close();
  printTable(`${rounds} rounds on the sandbox`, 'ms', [
    ['raw Patroni PATCH /config -> first accepted INSERT', raw],
    ['promote runbook (approved at the gate): approval -> first accepted write (RTO)', rto],
    ['promote runbook: start -> done (planned: fence + catch-up + promote + verify + rejoin, no backup)', total],
  ]);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
