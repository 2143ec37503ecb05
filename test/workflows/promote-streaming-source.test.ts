// A planned switchover promises zero loss only when the standby streams from the source's leader: the walsender
// hands the shutdown checkpoint to the receivers connected to it. After a switchover inside the source, a standby
// whose standby_cluster names a member (the local kind; a Kubernetes Service follows the leader) streams from a
// replica, and the old leader's last WAL reaches it only if that replica received it first. promote must see that
// and refuse before it fences anything.
import { startRunbook } from '../../scripts/lib/runbook-client';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type PromoteInput } from '../../workflows/contracts/runbooks';
import { approveAs } from '../helpers/approvals';
import { driverOf, roleOf, sql } from '../helpers/clusters';
import { failureOf } from '../helpers/failures';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const startPromote = (h: RunbookHarness, input: PromoteInput) =>
  startRunbook(h.client, { workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: input.cluster, input, taskQueue: h.taskQueue });

/** Polls until `probe` answers (Patroni acts once per loop), bounded; throws with what it saw last. */
async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    const v = await probe().catch((e: unknown) => { last = e; return null; });
    if (v !== null) return v;
    await sleep(1000);
  }
  throw new Error(`${what}: not reached (last error: ${String(last)})`);
}

async function senderPort(ref: string): Promise<number | null> {
  const rows = await sql<{ status: string; sender_port: number | null }>(ref, 'SELECT status, sender_port FROM pg_stat_wal_receiver');
  return rows[0]?.status === 'streaming' ? Number(rows[0].sender_port) : null;
}

describe('promote (planned) checks where the standby streams from', () => {
  let pair: StandbyPair | null = null;
  afterAll(async () => {
    if (pair) await deleteStandbyPair(pair);
  });

  it('refuses before the fence when the standby streams from a replica of the source after a switchover inside it', async () => {
    pair = await createStandbyPair('sws');
    const { driver: eu, cluster } = driverOf(pair.source);
    const members = eu.region.getCluster(cluster)!.members;
    const oldLeader = (await eu.region.leaderMember(cluster))!;
    const candidate = members.find((m) => m.name !== oldLeader.name)!;
    expect(await until('standby streams from the source leader', async () => ((await senderPort(pair!.standby)) === oldLeader.pgPort ? true : null))).toBe(true);

    // Patroni answers 503 while the candidate is not yet a healthy, caught-up replica: asked again until it takes it.
    expect(await until('the source takes a switchover to the candidate', async () => {
      const sw = await fetch(`${oldLeader.restUrl}/switchover`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ leader: oldLeader.name, candidate: candidate.name }),
      });
      return sw.status === 200 ? sw.status : null;
    })).toBe(200);
    await until('the candidate leads the source as a primary', async () =>
      ((await eu.region.leaderMember(cluster))?.name === candidate.name && (await roleOf(pair!.source)) === 'primary' ? true : null));
    // The standby's host still names the old leader, a replica now: it reconnects there and cascades.
    await until('standby streams from the old leader, now a replica', async () => ((await senderPort(pair!.standby)) === oldLeader.pgPort ? true : null));

    await withRunbookWorkers(async (h) => {
      const handle = await startPromote(h, { cluster: pair!.standby, mode: 'planned', approvalTimeoutSeconds: 600 });
      await approveAs(handle, 'alice', { ticket: 'CHG-SWS', comment: 'switchover test' });
      const failure = await failureOf(handle);
      expect(failure.type).toBe('PreconditionFailedError');
      expect(failure.message).toContain(`streams from 127.0.0.1:${oldLeader.pgPort}, which is not the leader of ${pair!.source}`);
      expect(failure.message).toContain(`its leader is reached at 127.0.0.1:${candidate.pgPort}`);
      const steps = (await handle.query(getJournalQuery)).map((e) => e.step);
      expect(steps).not.toContain('fence-old-primary');
    });
    // Nothing was fenced or promoted: the source still takes writes, the standby still follows it.
    expect(await roleOf(pair.source)).toBe('primary');
    await sql(pair.source, 'INSERT INTO public.writes (id) VALUES (-42)');
    expect(await roleOf(pair.standby)).toBe('standby_leader');
  });
});
