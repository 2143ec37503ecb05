// Replication slots on the zalando kind (issue #14, item 4), against a REAL kube-apiserver (harness as in
// zalando-runbooks.test.ts: the stand-in operator and kubelet back pods with real Patroni members). The source's
// manifest keeps the standby's slot in spec.patroni.slots (the operator syncs it into Patroni's config), the
// standby's names it in spec.standby.standby_primary_slot_name; a planned promotion moves it to the other side and
// no inactive `dr_` slot is left on any member. Private ports 31800-31899 and a temp folder.
import { Client } from 'pg';
import { startRunbook } from '../../scripts/lib/runbook-client';
import type { PostgresqlObject } from '../../activities/sites/zalando-driver';
import type { LocalSiteDriver } from '../../activities/sites/local-driver';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type PromoteResult } from '../../workflows/contracts/runbooks';
import { approveWhenAsked } from '../helpers/approvals';
import { patroniNativeDemote } from '../helpers/patroni-version';
import { sql, waitFor } from '../helpers/private-regions';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { startZalandoHarness, type ZalandoHarness } from './zalando-harness';

const NAME = 'acid-zsl';
const EU = `eu/${NAME}`;
const US = `us/${NAME}`;
// Written out rather than computed with the code under test: the names are part of the contract.
const US_SLOT = 'dr_us_acid_zsl';
const EU_SLOT = 'dr_eu_acid_zsl';
let z: ZalandoHarness;
const timings: Record<string, number> = {};

interface SlotRow { member: string; slot: string; active: boolean; inRecovery: boolean }

const postgresql = async (ns: string) => (await z.admin('GET', `/apis/acid.zalan.do/v1/namespaces/${ns}/postgresqls/${NAME}`)).body as PostgresqlObject;

/** pg_replication_slots of every backing member whose Postgres answers, read member by member. */
async function slotsOn(backing: LocalSiteDriver): Promise<SlotRow[]> {
  const rows: SlotRow[] = [];
  for (const m of backing.region.getCluster(NAME)!.members) {
    const c = new Client({ ...(await backing.region.pgConfig(NAME, { member: m.name })), connectionTimeoutMillis: 3_000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const r = await c.query<{ slot_name: string; active: boolean; rec: boolean }>('select slot_name, active, pg_is_in_recovery() as rec from pg_replication_slots');
      for (const s of r.rows) rows.push({ member: m.name, slot: s.slot_name, active: s.active, inRecovery: s.rec });
    } catch {
      // A member that does not answer holds nothing this test can see.
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  return rows;
}

const leaderOf = async (backing: LocalSiteDriver) => (await backing.describeCluster(NAME))!.leaderMember!;
const walReceiverSlot = async (backing: LocalSiteDriver) => {
  const rows = await sql<{ slot_name: string | null; status: string }>(backing, NAME, 'select slot_name, status from pg_stat_wal_receiver');
  return rows[0]?.status === 'streaming' ? rows[0].slot_name : null;
};

/** The leader of `holder` holds `slot`, active, and `standby`'s leader streams through it. */
async function streamsThrough(holder: LocalSiteDriver, standby: LocalSiteDriver, slot: string): Promise<void> {
  await waitFor(`${slot} active on the leader and used by the standby`, 120_000, async () => {
    const leader = await leaderOf(holder);
    const held = (await slotsOn(holder)).find((r) => r.member === leader && r.slot === slot);
    return held?.active && (await walReceiverSlot(standby)) === slot ? true : null;
  });
}

beforeAll(async () => {
  const t0 = Date.now();
  z = await startZalandoHarness('zalando-slots', 31800, { [NAME]: { users: ['app'] } });
  timings.harnessStartMs = Date.now() - t0;
  const created = await z.admin('POST', '/apis/acid.zalan.do/v1/namespaces/eu/postgresqls', {
    apiVersion: 'acid.zalan.do/v1', kind: 'postgresql', metadata: { name: NAME },
    spec: { teamId: 'acid', numberOfInstances: 2, postgresql: { version: '15' }, volume: { size: '1Gi' }, users: { app: [] } },
  });
  expect(created.status).toBe(201);
  await waitFor(`${EU} Running`, 180_000, async () => ((await postgresql('eu')).status?.PostgresClusterStatus === 'Running' ? true : null));
  await z.euBacking.withLeaderSql(NAME, (c) => c.query('CREATE TABLE public.orders (id int primary key); INSERT INTO public.orders SELECT generate_series(1, 100)'));
  // provision-standby bootstraps from the source's newest complete base backup.
  await withRunbookWorkers(async (h) => {
    const handle = await startRunbook(h.client, {
      workflowType: 'forceBackup', runbook: RUNBOOK_NAMES.forceBackup, cluster: EU, taskQueue: h.taskQueue, input: { cluster: EU },
    });
    await handle.result();
  }, { sitesFile: z.sitesFile });
});

afterAll(async () => {
  await z?.stop(timings);
});

describe('replication slots through the zalando operator', () => {
  it('provision-standby (streaming) keeps the slot in the source\'s spec.patroni.slots; the source leader holds it, active, and the standby streams through it', async () => {
    await withRunbookWorkers(async (h) => {
      const handle = await startRunbook(h.client, {
        workflowType: 'provisionStandby', runbook: RUNBOOK_NAMES.provisionStandby, cluster: US, taskQueue: h.taskQueue,
        input: { source: EU, target: US, method: 'both', limits: { pollIntervalSeconds: 1 } },
      });
      await handle.result();
      const kept = (await handle.query(getJournalQuery)).find((e) => e.step === 'keep-standby-slot');
      z.regions.log(`keep-standby-slot: ${kept?.outcome} ${kept?.message}`);
      expect(kept?.outcome).toBe('done');
    }, { sitesFile: z.sitesFile });
    expect((await postgresql('eu')).spec.patroni?.slots).toEqual({ [US_SLOT]: { type: 'physical' } });
    expect((await postgresql('us')).spec.standby?.standby_primary_slot_name).toBe(US_SLOT);
    await streamsThrough(z.euBacking, z.usBacking, US_SLOT);
  });

  it('a planned promotion moves it: released on the old primary\'s manifest and members, kept on the promoted one for the rejoined old primary; no inactive dr_ slot is left', async () => {
    await withRunbookWorkers(async (h) => {
      const handle = await startRunbook(h.client, {
        workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: US, taskQueue: h.taskQueue,
        input: { cluster: US, mode: 'planned' },
      });
      await approveWhenAsked(handle, 'alice');
      const r = (await handle.result()) as PromoteResult;
      expect(r.fence).toBe('CONFIRMED');
      const journal = await handle.query(getJournalQuery);
      // Patroni 4.1 demoted eu toward us (slot included) before the promotion: the rejoin found it done.
      expect(journal.find((e) => e.step === 'rejoin-old-primary')?.outcome).toBe(patroniNativeDemote() ? 'already' : 'done');
      expect(journal.find((e) => e.step === 'keep-standby-slot' && e.message.includes(EU_SLOT))?.outcome).toBe('done');
    }, { sitesFile: z.sitesFile });
    expect((await postgresql('eu')).spec.patroni?.slots ?? {}).toEqual({});
    expect((await postgresql('us')).spec.patroni?.slots).toEqual({ [EU_SLOT]: { type: 'physical' } });
    expect((await postgresql('eu')).spec.standby?.standby_primary_slot_name).toBe(EU_SLOT);
    await streamsThrough(z.usBacking, z.euBacking, EU_SLOT);
    // Patroni drops a slot that left its config on its next loop: wait for that, then nothing stale may remain.
    // Patroni 4 keeps a copy of each permanent physical slot on the replicas (so it survives a failover inside the
    // cluster; 3.0.2 kept it on the leader only): a replica's copy of the slot the manifest keeps is not stale.
    const stale = (r: SlotRow) => r.slot.startsWith('dr_') && !r.active && !(r.slot === EU_SLOT && r.inRecovery);
    const left = await waitFor('no inactive dr_ slot on any member', 120_000, async () => {
      const all = [...(await slotsOn(z.euBacking)), ...(await slotsOn(z.usBacking))];
      return all.some(stale) ? null : all;
    }).catch(async () => [...(await slotsOn(z.euBacking)), ...(await slotsOn(z.usBacking))]);
    expect(left.filter(stale)).toEqual([]);
    expect(left.filter((r) => r.slot === US_SLOT)).toEqual([]);
  });
});
