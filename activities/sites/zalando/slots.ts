// Replication slots on the zalando kind. Reading them is plain SQL on every pod. Keeping them is not done on this
// kind yet: the operator owns Patroni's config (spec.patroni.slots on the source, spec.standby.standby_primary_slot_name
// on the standby) and the stand-in operator applies neither, so a slot created here would be one no standby uses,
// holding WAL on the source forever. The runbooks' slot steps report that instead of creating it.
import { Client } from 'pg';
import type { ReplicationSlotRow, StandbySlotResult } from '../site-driver';
import type { ZalandoSiteDriver } from '../zalando-driver';

export async function listZalandoSlots(d: ZalandoSiteDriver, cluster: string): Promise<ReplicationSlotRow[]> {
  const rows: ReplicationSlotRow[] = [];
  for (const pod of await d.pods(cluster)) {
    if (!pod.status?.podIP) continue;
    const c = new Client(await d.podPgConfig(cluster, pod));
    c.on('error', () => undefined);
    try {
      await c.connect();
      const r = await c.query<{ slot_name: string; slot_type: string; active: boolean; restart_lsn: string | null }>(
        'select slot_name, slot_type, active, restart_lsn from pg_replication_slots',
      );
      for (const s of r.rows) rows.push({ member: pod.metadata.name, slot: s.slot_name, type: s.slot_type, active: s.active, restartLsn: s.restart_lsn });
    } catch {
      // A pod whose Postgres is down holds its slots on disk; Patroni reconciles them when it starts again.
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  return rows;
}

export function unmanagedSlot(d: ZalandoSiteDriver, cluster: string, slot: string): StandbySlotResult {
  return {
    changed: false, slot, heldBy: [],
    pending: `${d.site}/${cluster} is of the zalando kind: its standbys stream without slot ${slot} (spec.patroni.slots is not managed by the runbooks there yet)`,
  };
}
