// Planned switchback under a continuous writer that follows the primary: write downtime and rows lost, for the
// promote runbook in planned mode (approved as soon as asked) next to the same switchover done by hand with Patroni and
// pg_ctl: fence the primary, wait for the standby to replay its shutdown checkpoint, PATCH standby_cluster null.
// Run against a running sandbox: `./scripts/sandbox up && npx tsx bench/switchback.ts [rounds]`. Asserts nothing.
import type { Client } from '@temporalio/client';
import { startRunbook } from '../scripts/lib/runbook-client';
import { RUNBOOK_NAMES, type PromoteInput, type PromoteResult } from '../workflows/contracts/runbooks';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../test/helpers/standby-pair';
import { driverOf, sql } from '../test/helpers/clusters';
import { startWriter, type Writer } from '../test/helpers/writer';
import { lsnDiff } from '../workflows/contracts/lsn';
import { approveAsSandboxPeople, printTable, rounds as roundsArg, sandboxClient, sleep } from './lib';

const rounds = roundsArg(3);

async function lost(writer: Writer, pair: StandbyPair): Promise<number> {
  const present = new Set((await sql<{ id: string }>(pair.standby, 'SELECT id FROM public.writes')).map((r) => Number(r.id)));
  return writer.acknowledged.filter((id) => !present.has(id)).length;
}

async function byRunbook(client: Client, pair: StandbyPair): Promise<{ gapMs: number; lost: number; runbookDowntimeMs: number | null }> {
  const writer = await startWriter([pair.source, pair.standby]);
  await sleep(2000);
  const input: PromoteInput = {
    cluster: pair.standby, mode: 'planned', takeBackup: false,
  };
  const handle = await startRunbook(client, { workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: pair.standby, input });
  // The bench approves as soon as the gate opens (promote takes no approval in its input).
  await approveAsSandboxPeople(handle, 'BENCH');
  const result = (await handle.result()) as PromoteResult;
  await sleep(2000);
  await writer.stop();
  return { gapMs: writer.longestGapMs(), lost: await lost(writer, pair), runbookDowntimeMs: result.writeDowntimeMs };
}

async function byHand(pair: StandbyPair): Promise<{ gapMs: number; lost: number }> {
  const writer = await startWriter([pair.source, pair.standby]);
  await sleep(2000);
  const src = driverOf(pair.source);
  const dst = driverOf(pair.standby);
  const fence = await src.driver.region.fenceCluster(src.cluster);
  if (!fence.finalLsn) throw new Error('the fence reported no final checkpoint LSN');
  for (;;) {
    const replayed = (await sql<{ lsn: string }>(pair.standby, 'SELECT pg_last_wal_replay_lsn()::text AS lsn'))[0].lsn;
    if (lsnDiff(replayed, fence.finalLsn) >= 0) break;
    await sleep(50);
  }
  const r = await fetch(`${dst.driver.region.patroniUrl(dst.cluster)}/config`, { method: 'PATCH', body: JSON.stringify({ standby_cluster: null }) });
  if (!r.ok) throw new Error(`PATCH /config answered ${r.status}`);
  for (;;) {
    if ((await dst.driver.describeCluster(dst.cluster))?.leaderRole === 'primary') break;
    await sleep(50);
  }
  await sleep(2000);
  await writer.stop();
  return { gapMs: writer.longestGapMs(), lost: await lost(writer, pair) };
}

async function main(): Promise<void> {
  const client = await sandboxClient();
  const m = { rbGap: [] as number[], rbLost: [] as number[], rbDown: [] as number[], handGap: [] as number[], handLost: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    const a = await createStandbyPair(`bench-sbr${i}`);
    const rb = await byRunbook(client, a);
    await deleteStandbyPair(a);
    const b = await createStandbyPair(`bench-sbh${i}`);
    const hand = await byHand(b);
    await deleteStandbyPair(b);
    m.rbGap.push(rb.gapMs);
    m.rbLost.push(rb.lost);
    if (rb.runbookDowntimeMs !== null) m.rbDown.push(rb.runbookDowntimeMs);
    m.handGap.push(hand.gapMs);
    m.handLost.push(hand.lost);
    console.log(`round ${i + 1}: runbook: longest client gap ${rb.gapMs} ms, lost ${rb.lost}, runbook's write downtime ${rb.runbookDowntimeMs} ms; by hand: gap ${hand.gapMs} ms, lost ${hand.lost}`);
  }
  await client.connection.close();
  printTable(`Planned switchover under a writer (INSERT every 20 ms, follows the primary), ${rounds} rounds`, 'ms or rows', [
    ['promote runbook: longest gap between acknowledged writes', m.rbGap],
    ['promote runbook: its own write-downtime figure (fence start -> marker)', m.rbDown],
    ['promote runbook: acknowledged rows lost', m.rbLost],
    ['by hand (fence, wait for replay, PATCH): longest gap', m.handGap],
    ['by hand: acknowledged rows lost', m.handLost],
  ]);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
