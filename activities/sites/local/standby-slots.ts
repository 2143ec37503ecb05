// Permanent physical replication slots a source keeps for its streaming standbys, as Patroni's `slots` in the
// source's dynamic config: Patroni creates them on whichever member leads (so they survive a switchover inside
// the source) and drops a slot removed from the config once nothing streams through it.
import { Client } from 'pg';
import { BadInputError, SiteUnreachableError } from '../../../workflows/contracts/errors';
import { SLOT_NAME } from '../../../workflows/contracts/slots';
import type { StandbySlotResult, ReplicationSlotRow } from '../site-driver';
import { clusterView, describeView, needCluster, pollUntil } from './cluster-state';
import { patchDynamicConfig, readDynamicConfig } from './dcs-config';
import { leaderOf } from './patroni-api';
import type { SwitchHandle } from './standby-switch';

function checkSlotName(region: SwitchHandle, name: string, slot: string): void {
  if (!SLOT_NAME.test(slot)) {
    throw new BadInputError(`${region.name}/${name}: slot name "${slot}" must be 1-63 lower-case letters, digits or '_'`, { cluster: name, slot });
  }
}

/** pg_replication_slots of every member whose Postgres answers; members that do not answer are left out. */
export async function replicationSlots(region: SwitchHandle, name: string): Promise<ReplicationSlotRow[]> {
  const info = needCluster(region, name);
  const rows: ReplicationSlotRow[] = [];
  for (const m of info.members) {
    const c = new Client({ ...(await region.pgConfig(name, { member: m.name })), connectionTimeoutMillis: 3_000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const r = await c.query<{ slot_name: string; slot_type: string; active: boolean; restart_lsn: string | null; in_recovery: boolean }>(
        'select slot_name, slot_type, active, restart_lsn, pg_is_in_recovery() as in_recovery from pg_replication_slots',
      );
      for (const s of r.rows) {
        rows.push({ member: m.name, slot: s.slot_name, type: s.slot_type, active: s.active, restartLsn: s.restart_lsn });
      }
    } catch {
      // A stopped member holds its slots on disk; Patroni reconciles them when it starts the member.
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  return rows;
}

async function dynamicSlots(region: SwitchHandle, name: string): Promise<{ slots: Record<string, unknown>; paused: boolean }> {
  const info = needCluster(region, name);
  const dcs = await readDynamicConfig(info, region.cfg.etcd.clientPort);
  if (!dcs) throw new SiteUnreachableError(`${region.name}/${name}: neither Patroni nor etcd answers`, { site: region.name, cluster: name });
  const slots = dcs.config.slots;
  return { slots: typeof slots === 'object' && slots !== null ? (slots as Record<string, unknown>) : {}, paused: dcs.config.pause === true };
}

/**
 * Adds `slot` to the cluster's permanent slots and waits until its leader holds it. A paused cluster (fenced)
 * gets the config only: Patroni creates the slot when it resumes.
 */
export async function ensureStandbySlot(region: SwitchHandle, name: string, slot: string, opts: { timeoutMs?: number } = {}): Promise<StandbySlotResult> {
  checkSlotName(region, name, slot);
  const info = needCluster(region, name);
  const { slots, paused } = await dynamicSlots(region, name);
  const configured = (slots[slot] as { type?: string } | undefined)?.type === 'physical';
  if (!configured) await patchDynamicConfig(info, region.cfg.etcd.clientPort, { slots: { [slot]: { type: 'physical' } } });
  if (paused) return { changed: !configured, slot, heldBy: [], pending: `${region.name}/${name} is paused: Patroni creates ${slot} when it resumes` };
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const leader = await pollUntil(timeoutMs, async () => {
    const l = leaderOf(await clusterView(info));
    if (!l) return null;
    const rows = await replicationSlots(region, name);
    return rows.some((r) => r.member === l.name && r.slot === slot) ? l.name : null;
  }, async () => ({
    message: `${region.name}/${name}: Patroni did not create permanent slot ${slot} on its leader within ${timeoutMs} ms (${describeView(await clusterView(info))})`,
    facts: { cluster: name, slot },
  }));
  return { changed: !configured, slot, heldBy: [leader], pending: null };
}

/**
 * Removes `slot` from the cluster's permanent slots and waits until no running member holds it. A slot still
 * active after the wait means its standby still streams: NotReadyError (retried), never a forced drop. A paused
 * cluster keeps the slot on disk until Patroni resumes it and drops the slot it no longer knows.
 */
export async function dropStandbySlot(region: SwitchHandle, name: string, slot: string, opts: { timeoutMs?: number } = {}): Promise<StandbySlotResult> {
  checkSlotName(region, name, slot);
  const info = needCluster(region, name);
  const { slots, paused } = await dynamicSlots(region, name);
  const configured = slot in slots;
  if (configured) await patchDynamicConfig(info, region.cfg.etcd.clientPort, { slots: { [slot]: null } });
  const holding = async () => (await replicationSlots(region, name)).filter((r) => r.slot === slot);
  if (paused) {
    const held = (await holding()).map((r) => r.member);
    return {
      changed: configured, slot, heldBy: held,
      pending: held.length ? `${region.name}/${name} is paused: Patroni drops ${slot} from ${held.join(', ')} when it resumes` : null,
    };
  }
  const timeoutMs = opts.timeoutMs ?? 90_000;
  let last: ReplicationSlotRow[] = [];
  await pollUntil(timeoutMs, async () => {
    last = await holding();
    return last.length === 0 ? true : null;
  }, async () => ({
    message: `${region.name}/${name}: slot ${slot} is still held ${timeoutMs} ms after it left Patroni's config ` +
      `(${last.map((r) => `${r.member}${r.active ? ' active: a standby still streams through it' : ' inactive'}`).join(', ')})`,
    facts: { cluster: name, slot, heldBy: last.map((r) => r.member) },
  }));
  return { changed: configured, slot, heldBy: [], pending: null };
}
