// Replication slots of streaming standbys against real parts (issue #14, item 4): provision-standby gives the
// standby a permanent slot on its source, a switchover inside the source keeps it, a planned promotion moves it
// to the other side and a switchback moves it back, and no slot for a standby that no longer streams is left.
import { Client } from 'pg';
import { startRunbook } from '../../scripts/lib/runbook-client';
import {
  RUNBOOK_NAMES, type FailbackInput, type FailbackResult, type PromoteResult, type ProvisionStandbyInput, type PromoteInput,
} from '../../workflows/contracts/runbooks';
import { approveWhenAsked } from '../helpers/approvals';
import { deleteCluster, driverOf, roleOf, sql } from '../helpers/clusters';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { saveHistory } from '../helpers/histories';
import { failureOf } from '../helpers/failures';
import { createSource } from '../helpers/standby-pair';
import { PreconditionFailedError } from '../../workflows/contracts/errors';
import type { SiteDriver } from '../../activities/sites/site-driver';

const SOURCE = 'eu/acid-sl';
const STANDBY = 'us/acid-sl';
// Written out here rather than computed with the code under test: the names are part of the contract.
const STANDBY_SLOT = 'dr_us_acid_sl';
const SOURCE_SLOT = 'dr_eu_acid_sl';
const FB_SOURCE = 'eu/acid-sf';
const FB_STANDBY = 'us/acid-sf';
const FB_STANDBY_SLOT = 'dr_us_acid_sf';
const FB_SOURCE_SLOT = 'dr_eu_acid_sf';
const FAIL_SOURCE = 'eu/acid-sx';
const FAIL_STANDBY = 'us/acid-sx';
const FAIL_STANDBY_SLOT = 'dr_us_acid_sx';

interface SlotRow { member: string; slot: string; active: boolean; inRecovery: boolean }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** pg_replication_slots of every member of `ref` whose Postgres answers, read member by member. */
async function slotsOn(ref: string): Promise<SlotRow[]> {
  const { driver, cluster } = driverOf(ref);
  const rows: SlotRow[] = [];
  for (const m of driver.region.getCluster(cluster)!.members) {
    const c = new Client({ ...(await driver.region.pgConfig(cluster, { member: m.name })), connectionTimeoutMillis: 3_000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const r = await c.query<{ slot_name: string; active: boolean; rec: boolean }>(
        'select slot_name, active, pg_is_in_recovery() as rec from pg_replication_slots');
      for (const s of r.rows) rows.push({ member: m.name, slot: s.slot_name, active: s.active, inRecovery: s.rec });
    } catch {
      // A member that does not answer holds nothing this test can see.
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  return rows;
}

async function leaderName(ref: string): Promise<string> {
  const { driver, cluster } = driverOf(ref);
  return (await driver.describeCluster(cluster))!.leaderMember!;
}

async function walReceiverSlot(ref: string): Promise<string | null> {
  const rows = await sql<{ slot_name: string | null; status: string }>(ref, 'select slot_name, status from pg_stat_wal_receiver');
  return rows[0]?.status === 'streaming' ? rows[0].slot_name : null;
}

async function dynamicConfigSlots(ref: string): Promise<string[]> {
  const { driver, cluster } = driverOf(ref);
  const r = await fetch(`${driver.region.patroniUrl(cluster)}/config`);
  return Object.keys(((await r.json()) as { slots?: Record<string, unknown> }).slots ?? {});
}

/** Polls `probe` until it returns a value (Patroni acts once per loop_wait), else returns what it saw last. */
async function eventually<T>(probe: () => Promise<T | null>, last: () => Promise<unknown>, timeoutMs = 90_000): Promise<T | { notYet: unknown }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe().catch(() => null);
    if (v !== null) return v;
    await sleep(1000);
  }
  return { notYet: await last() };
}

/** A slot named like a runbook's (`dr_...`) that is not active, or not for the cluster's current standby (a replica's copy of that one aside). */
async function strayStandbySlots(refs: string[], standbyOf: Record<string, string | null>): Promise<Array<SlotRow & { cluster: string }>> {
  const stray: Array<SlotRow & { cluster: string }> = [];
  for (const ref of refs) {
    const expected = standbyOf[ref];
    for (const s of await slotsOn(ref)) {
      if (!s.slot.startsWith('dr_')) continue;
      // Patroni 4 keeps a copy of every permanent physical slot on each replica (advanced from the leader's, so the
      // slot survives a failover inside the cluster); 3.0.2 kept it on the leader only. A copy of the expected
      // slot on a replica is that, not a leftover.
      if (s.slot === expected && s.inRecovery) continue;
      if (s.slot !== expected || !s.active) stray.push({ cluster: ref, ...s });
    }
  }
  return stray;
}

const start = (h: RunbookHarness, workflowType: string, runbook: string, cluster: string, input: unknown) =>
  startRunbook(h.client, { workflowType, runbook, cluster, input, taskQueue: h.taskQueue });

describe('replication slots of streaming standbys', () => {
  afterAll(async () => {
    for (const ref of [STANDBY, SOURCE, FB_STANDBY, FB_SOURCE, FAIL_STANDBY, FAIL_SOURCE]) await deleteCluster(ref);
  });

  it('provision keeps one on the source, a switchover inside the source keeps it, promotion and switchback move it, none is left behind', async () => {
    await createSource(SOURCE);
    await withRunbookWorkers(async (h) => {
      // 1. provision-standby: the slot is on the source's leader before the standby streams, and the standby uses it.
      const provisioned = await start(h, 'provisionStandby', RUNBOOK_NAMES.provisionStandby, STANDBY,
        { source: SOURCE, target: STANDBY, method: 'both', limits: { pollIntervalSeconds: 1 } } satisfies ProvisionStandbyInput);
      await provisioned.result();
      await saveHistory(provisioned, 'provision-standby.stream-with-slot');
      const srcLeader = await leaderName(SOURCE);
      expect(await dynamicConfigSlots(SOURCE)).toContain(STANDBY_SLOT);
      const onLeader = await eventually(
        async () => ((await slotsOn(SOURCE)).find((s) => s.member === srcLeader && s.slot === STANDBY_SLOT && s.active) ?? null),
        () => slotsOn(SOURCE));
      expect(onLeader).toMatchObject({ member: srcLeader, slot: STANDBY_SLOT, active: true });
      expect(await eventually(() => walReceiverSlot(STANDBY), () => sql(STANDBY, 'select * from pg_stat_wal_receiver'))).toBe(STANDBY_SLOT);

      // 2. A switchover inside the source: the new leader holds the permanent slot, the standby still replays.
      const { driver: eu, cluster: euCluster } = driverOf(SOURCE);
      const candidate = eu.region.getCluster(euCluster)!.members.map((m) => m.name).find((n) => n !== srcLeader)!;
      const sw = await fetch(`${eu.region.patroniUrl(euCluster, srcLeader)}/switchover`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ leader: srcLeader, candidate }),
      });
      expect(sw.status).toBe(200);
      expect(await eventually(async () => ((await leaderName(SOURCE)) === candidate && (await roleOf(SOURCE)) === 'primary' ? true : null),
        () => leaderName(SOURCE))).toBe(true);
      const onNewLeader = await eventually(
        async () => ((await slotsOn(SOURCE)).find((s) => s.member === candidate && s.slot === STANDBY_SLOT) ?? null),
        () => slotsOn(SOURCE));
      expect(onNewLeader).toMatchObject({ member: candidate, slot: STANDBY_SLOT, inRecovery: false });
      // The local kind's streaming endpoint is a member, not a Service that follows the leader as on Kubernetes:
      // the standby is pointed at the new leader the way that Service would move, then must stream through the slot.
      const newLeaderPort = eu.region.getCluster(euCluster)!.members.find((m) => m.name === candidate)!.pgPort;
      const { driver: us, cluster: usCluster } = driverOf(STANDBY);
      const repoint = await fetch(`${us.region.patroniUrl(usCluster)}/config`, {
        method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ standby_cluster: { port: newLeaderPort } }),
      });
      expect(repoint.status).toBe(200);
      expect(await eventually(async () => ((await walReceiverSlot(STANDBY)) === STANDBY_SLOT
        && (await slotsOn(SOURCE)).some((s) => s.member === candidate && s.slot === STANDBY_SLOT && s.active) ? true : null),
      async () => ({ source: await slotsOn(SOURCE), receiver: await sql(STANDBY, 'select * from pg_stat_wal_receiver') }))).toBe(true);
      await sql(SOURCE, 'CREATE TABLE IF NOT EXISTS public.slot_marks (id int PRIMARY KEY)');
      await sql(SOURCE, 'INSERT INTO public.slot_marks VALUES (1)');
      expect(await eventually(async () => ((await sql(STANDBY, "select to_regclass('public.slot_marks') is not null as t"))[0].t
        && (await sql(STANDBY, 'select 1 from public.slot_marks where id = 1')).length === 1 ? true : null), () => slotsOn(SOURCE), 120_000)).toBe(true);
      process.stdout.write(`[slots] after the switchover inside ${SOURCE}: ${JSON.stringify(await slotsOn(SOURCE))}; ` +
        `${STANDBY} streams through ${await walReceiverSlot(STANDBY)}\n`);

      // 3. Planned promotion of the standby: its slot leaves the old source; the rejoined old primary gets one on it.
      const promoted = await start(h, 'promote', RUNBOOK_NAMES.promote, STANDBY,
        { cluster: STANDBY, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false } satisfies PromoteInput);
      await approveWhenAsked(promoted, 'alice', 'CHG-14');
      expect(await promoted.result()).toMatchObject({ fence: 'CONFIRMED' } satisfies Partial<PromoteResult>);
      await saveHistory(promoted, 'promote.planned-moves-slot');
      expect(await roleOf(SOURCE)).toBe('standby_leader');
      expect(await dynamicConfigSlots(SOURCE)).not.toContain(STANDBY_SLOT);
      expect(await dynamicConfigSlots(STANDBY)).toContain(SOURCE_SLOT);
      expect(await eventually(() => walReceiverSlot(SOURCE), () => sql(SOURCE, 'select * from pg_stat_wal_receiver'))).toBe(SOURCE_SLOT);
      const afterPromote = await eventually(async () => {
        const stray = await strayStandbySlots([SOURCE, STANDBY], { [SOURCE]: null, [STANDBY]: SOURCE_SLOT });
        return stray.length === 0 ? true : null;
      }, () => strayStandbySlots([SOURCE, STANDBY], { [SOURCE]: null, [STANDBY]: SOURCE_SLOT }));
      expect(afterPromote).toBe(true);

      // 4. Switchback: the slot moves back, and again nothing is left for a standby that no longer streams.
      const back = await start(h, 'promote', RUNBOOK_NAMES.promote, SOURCE,
        { cluster: SOURCE, mode: 'planned', source: STANDBY, approvalTimeoutSeconds: 600, takeBackup: false } satisfies PromoteInput);
      await approveWhenAsked(back, 'alice', 'CHG-15');
      expect(await back.result()).toMatchObject({ fence: 'CONFIRMED' });
      expect(await roleOf(STANDBY)).toBe('standby_leader');
      expect(await dynamicConfigSlots(STANDBY)).not.toContain(SOURCE_SLOT);
      expect(await dynamicConfigSlots(SOURCE)).toContain(STANDBY_SLOT);
      expect(await eventually(() => walReceiverSlot(STANDBY), () => sql(STANDBY, 'select * from pg_stat_wal_receiver'))).toBe(STANDBY_SLOT);
      const afterSwitchback = await eventually(async () => {
        const stray = await strayStandbySlots([SOURCE, STANDBY], { [SOURCE]: STANDBY_SLOT, [STANDBY]: null });
        return stray.length === 0 ? true : null;
      }, () => strayStandbySlots([SOURCE, STANDBY], { [SOURCE]: STANDBY_SLOT, [STANDBY]: null }));
      expect(afterSwitchback).toBe(true);
      process.stdout.write(`[slots] at the end: ${SOURCE} ${JSON.stringify(await slotsOn(SOURCE))}; ${STANDBY} ${JSON.stringify(await slotsOn(STANDBY))}\n`);
    });
  });

  it('an unplanned promotion leaves the slot on the lost source; failback releases it there and the rewound former primary streams through one on the new primary', async () => {
    await createSource(FB_SOURCE);
    await withRunbookWorkers(async (h) => {
      const provisioned = await start(h, 'provisionStandby', RUNBOOK_NAMES.provisionStandby, FB_STANDBY,
        { source: FB_SOURCE, target: FB_STANDBY, method: 'both', limits: { pollIntervalSeconds: 1 } } satisfies ProvisionStandbyInput);
      await provisioned.result();
    });
    expect(await dynamicConfigSlots(FB_SOURCE)).toContain(FB_STANDBY_SLOT);
    // The source region is lost: its cluster stops with the slot on disk and in its config.
    const src = driverOf(FB_SOURCE);
    await src.driver.region.stopCluster(src.cluster);
    await withRunbookWorkers(async (h) => {
      const promoted = await start(h, 'promote', RUNBOOK_NAMES.promote, FB_STANDBY,
        { cluster: FB_STANDBY, mode: 'unplanned', limits: { regionTimeoutSeconds: 3 }, takeBackup: false, approvalTimeoutSeconds: 600 } satisfies PromoteInput);
      await approveWhenAsked(promoted, 'alice');
      expect(await promoted.result()).toMatchObject({ fence: 'UNCONFIRMED' });
    }, { sites: ['us'] });
    for (let i = 1; i <= 5; i++) await sql(FB_STANDBY, 'INSERT INTO public.writes (id) VALUES ($1)', [200_000 + i]);

    await withRunbookWorkers(async (h) => {
      const failback = await start(h, 'failbackReseed', RUNBOOK_NAMES.failbackReseed, FB_SOURCE,
        { primary: FB_STANDBY, formerPrimary: FB_SOURCE, strategy: 'rewind', switchBack: false, approvalTimeoutSeconds: 600 } satisfies FailbackInput);
      await approveWhenAsked(failback, 'alice');
      expect(await failback.result()).toMatchObject({ strategy: 'rewind' } satisfies Partial<FailbackResult>);
      await saveHistory(failback, 'failback-reseed.rewind-moves-slot');
    });
    expect(await roleOf(FB_SOURCE)).toBe('standby_leader');
    expect(await dynamicConfigSlots(FB_SOURCE)).not.toContain(FB_STANDBY_SLOT);
    expect(await dynamicConfigSlots(FB_STANDBY)).toContain(FB_SOURCE_SLOT);
    expect(await eventually(() => walReceiverSlot(FB_SOURCE), () => sql(FB_SOURCE, 'select * from pg_stat_wal_receiver'))).toBe(FB_SOURCE_SLOT);
    const expected = { [FB_SOURCE]: null, [FB_STANDBY]: FB_SOURCE_SLOT };
    expect(await eventually(async () => ((await strayStandbySlots([FB_SOURCE, FB_STANDBY], expected)).length === 0 ? true : null),
      () => strayStandbySlots([FB_SOURCE, FB_STANDBY], expected))).toBe(true);
    process.stdout.write(`[slots] after failback: ${FB_SOURCE} ${JSON.stringify(await slotsOn(FB_SOURCE))}; ${FB_STANDBY} ${JSON.stringify(await slotsOn(FB_STANDBY))}\n`);
  });

  it('a standby that could not be built leaves no slot for it on the source', async () => {
    await createSource(FAIL_SOURCE);
    // The target site refuses to create the cluster (as a full disk or a refused manifest would), after the slot was kept.
    const refuseCreate = (d: SiteDriver): SiteDriver => (d.site !== 'us' ? d : new Proxy(d, {
      get(target, name, receiver) {
        if (name === 'createStandbyCluster') {
          return async () => { throw new PreconditionFailedError('injected: the target site refuses to create the cluster'); };
        }
        const v = Reflect.get(target, name, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }));
    await withRunbookWorkers(async (h) => {
      const provisioned = await start(h, 'provisionStandby', RUNBOOK_NAMES.provisionStandby, FAIL_STANDBY,
        { source: FAIL_SOURCE, target: FAIL_STANDBY, method: 'both', limits: { pollIntervalSeconds: 1 } } satisfies ProvisionStandbyInput);
      expect(await failureOf(provisioned)).toMatchObject({ type: 'PreconditionFailedError', message: expect.stringMatching(/injected/) });
    }, { wrapDriver: refuseCreate });
    expect(await dynamicConfigSlots(FAIL_SOURCE)).not.toContain(FAIL_STANDBY_SLOT);
    expect(await eventually(async () => ((await slotsOn(FAIL_SOURCE)).some((s) => s.slot === FAIL_STANDBY_SLOT) ? null : true),
      () => slotsOn(FAIL_SOURCE))).toBe(true);
  });
});
