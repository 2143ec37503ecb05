// Replication slots on the zalando kind, the operator's way: the source's manifest lists the slot under
// spec.patroni.slots and the operator syncs that into Patroni's dynamic config (PATCH /config), where Patroni
// creates it on whichever member leads; the standby's manifest names it in spec.standby.standby_primary_slot_name
// (zalando-driver standbySpec). The operator only removes from Patroni the slots it added itself, and its PATCH is
// not retried when it fails, so what Patroni's config still lacks (or still has) 30 s after the manifest changed is
// written by the driver in the operator's own form. Reading slots is plain SQL on every pod.
import { Client } from 'pg';
import { BadInputError, ClusterNotFoundError, NotReadyError, SiteUnreachableError } from '../../../workflows/contracts/errors';
import { SLOT_NAME } from '../../../workflows/contracts/slots';
import type { ReplicationSlotRow, StandbySlotResult } from '../site-driver';
import type { PostgresqlObject, ZalandoSiteDriver } from '../zalando-driver';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long the operator's own sync gets before the driver PATCHes Patroni itself. */
const OPERATOR_GRACE_MS = 30_000;

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

async function manifest(d: ZalandoSiteDriver, cluster: string, slot: string): Promise<PostgresqlObject> {
  if (!SLOT_NAME.test(slot)) {
    throw new BadInputError(`${d.site}/${cluster}: slot name "${slot}" must be 1-63 lower-case letters, digits or '_'`, { cluster, slot });
  }
  const pg = await d.getPostgresql(cluster);
  if (!pg) throw new ClusterNotFoundError(`no postgresql ${cluster} in namespace ${d.cfg.namespace} (site ${d.site})`, { cluster, site: d.site });
  return pg;
}

/** Patroni's view, or why the slot cannot be acted on now (no Patroni answers, paused by a fence, scaled to 0). */
async function patroniState(d: ZalandoSiteDriver, cluster: string, pg: PostgresqlObject) {
  if (pg.spec.numberOfInstances === 0) return { view: null, why: `${d.site}/${cluster} is scaled to 0 instances (fenced)` };
  const view = await d.patroniView(await d.pods(cluster));
  if (!view) return { view: null, why: `no Patroni answers in ${d.site}/${cluster}'s pods` };
  if (view.config?.pause === true) return { view, why: `${d.site}/${cluster} is paused` };
  return { view, why: null };
}

function patroniSlots(config: Record<string, unknown> | null | undefined): Record<string, unknown> {
  const s = config?.slots;
  return typeof s === 'object' && s !== null ? (s as Record<string, unknown>) : {};
}

/**
 * Until Patroni's config agrees with the manifest about `slot` (present or absent); after OPERATOR_GRACE_MS the
 * driver PATCHes it as the operator would have. Throws SiteUnreachableError when that PATCH is refused.
 */
async function settleConfig(d: ZalandoSiteDriver, cluster: string, slot: string, present: boolean): Promise<void> {
  const agrees = (cfg: Record<string, unknown> | null | undefined) => (slot in patroniSlots(cfg)) === present;
  for (const until = Date.now() + OPERATOR_GRACE_MS; Date.now() < until; await sleep(1000)) {
    const view = await d.patroniView(await d.pods(cluster));
    if (view && agrees(view.config)) return;
  }
  const view = await d.patroniView(await d.pods(cluster));
  if (!view) throw new SiteUnreachableError(`${d.site}/${cluster}: no Patroni answers in its pods`, { cluster });
  if (agrees(view.config)) return;
  const r = await d.patroni(view.via, 'PATCH', '/config', { slots: { [slot]: present ? { type: 'physical' } : null } });
  if (r?.status !== 200) throw new SiteUnreachableError(`${d.site}/${cluster}: PATCH /config via ${view.via.metadata.name} answered ${r?.status ?? 'nothing'}`, { cluster, slot });
}

/**
 * Idempotent: `slot` in the manifest's spec.patroni.slots and held by the leader pod. A fenced cluster (paused or
 * scaled to 0) gets the manifest only: the operator and Patroni create the slot when it runs again.
 */
export async function ensureZalandoSlot(d: ZalandoSiteDriver, cluster: string, slot: string, timeoutMs = 60_000): Promise<StandbySlotResult> {
  const pg = await manifest(d, cluster, slot);
  const configured = pg.spec.patroni?.slots?.[slot]?.type === 'physical';
  if (!configured) await d.kube.mergePatch(d.pgPath(cluster), { spec: { patroni: { slots: { [slot]: { type: 'physical' } } } } });
  const { why } = await patroniState(d, cluster, pg);
  if (why) return { changed: !configured, slot, heldBy: [], pending: `${why}: Patroni creates ${slot} from spec.patroni.slots when it runs again` };
  await settleConfig(d, cluster, slot, true);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const leader = await d.leaderPod(cluster);
    if (leader && (await listZalandoSlots(d, cluster)).some((r) => r.member === leader.pod.metadata.name && r.slot === slot)) {
      return { changed: !configured, slot, heldBy: [leader.pod.metadata.name], pending: null };
    }
    if (Date.now() > deadline) {
      throw new NotReadyError(`${d.site}/${cluster}: Patroni did not create permanent slot ${slot} on its leader (${leader?.pod.metadata.name ?? 'none'}) within ${timeoutMs} ms of spec.patroni.slots`, { cluster, slot });
    }
    await sleep(1000);
  }
}

/**
 * Idempotent: `slot` gone from spec.patroni.slots and from every running pod. Still active after the wait means a
 * standby still streams through it: NotReadyError (retried), never a forced drop. A fenced cluster keeps the slot
 * on disk until Patroni runs again and drops the slot it no longer has in its config.
 */
export async function dropZalandoSlot(d: ZalandoSiteDriver, cluster: string, slot: string, timeoutMs = 90_000): Promise<StandbySlotResult> {
  const pg = await manifest(d, cluster, slot);
  const configured = !!pg.spec.patroni?.slots && slot in pg.spec.patroni.slots;
  // merge-patch: null removes the key from the manifest.
  if (configured) await d.kube.mergePatch(d.pgPath(cluster), { spec: { patroni: { slots: { [slot]: null } } } });
  const holding = async () => (await listZalandoSlots(d, cluster)).filter((r) => r.slot === slot);
  const { why } = await patroniState(d, cluster, pg);
  if (why) {
    const held = (await holding()).map((r) => r.member);
    return { changed: configured, slot, heldBy: held, pending: held.length ? `${why}: Patroni drops ${slot} from ${held.join(', ')} when it runs again` : null };
  }
  await settleConfig(d, cluster, slot, false);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await holding();
    if (!last.length) return { changed: configured, slot, heldBy: [], pending: null };
    if (Date.now() > deadline) {
      throw new NotReadyError(`${d.site}/${cluster}: slot ${slot} is still held ${timeoutMs} ms after it left spec.patroni.slots ` +
        `(${last.map((r) => `${r.member}${r.active ? ' active: a standby still streams through it' : ' inactive'}`).join(', ')})`,
      { cluster, slot, heldBy: last.map((r) => r.member) });
    }
    await sleep(1000);
  }
}
