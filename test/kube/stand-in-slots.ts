// STAND-IN for the Zalando operator's slot sync (pkg/cluster/sync.go, the slots part of its Patroni config sync),
// for tests only: spec.patroni.slots that differ from Patroni's dynamic config are PATCHed in, and slots it added
// earlier that the manifest no longer has are PATCHed to null (Patroni then drops them from its members). Like the
// real operator, it remembers in memory which slots it added and removes only those.
import type { PostgresqlObject } from '../../activities/sites/zalando-driver';

/** `<ns>/<name>@<uid>` -> the slots this operator put into that cluster's Patroni config, as it put them. */
export type KnownSlots = Map<string, Record<string, unknown>>;

export async function syncPatroniSlots(known: KnownSlots, key: string, pg: PostgresqlObject, patroniRest: string): Promise<void> {
  const config = (await fetch(`${patroniRest}/config`).then((x) => (x.ok ? x.json() : null), () => null)) as { slots?: Record<string, unknown> | null } | null;
  if (!config) return;
  const mine = known.get(key) ?? {};
  const desired = Object.fromEntries(Object.entries(pg.spec.patroni?.slots ?? {}).filter(([, v]) => v != null));
  const effective = config.slots ?? {};
  const toSet: Record<string, unknown> = {};
  for (const [slot, was] of Object.entries(mine)) {
    if (slot in desired && JSON.stringify(desired[slot]) === JSON.stringify(was)) continue;
    toSet[slot] = null;
    delete mine[slot];
  }
  for (const [slot, want] of Object.entries(desired)) {
    mine[slot] = want;
    if (JSON.stringify(effective[slot] ?? null) !== JSON.stringify(want)) toSet[slot] = want;
  }
  known.set(key, mine);
  if (!Object.keys(toSet).length) return;
  const r = await fetch(`${patroniRest}/config`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ slots: toSet }) });
  if (!r.ok) throw new Error(`PATCH ${patroniRest}/config slots: ${r.status}`);
}
