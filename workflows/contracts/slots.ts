// The physical replication slot a streaming standby holds on its source, named after the standby. Bundle-safe:
// workflows name the slot they ask a site to keep or drop, and drivers name the one the standby connects with.
import { parseClusterRef } from './clusters';

/** Postgres' limit (NAMEDATALEN - 1) and Patroni's slot_name_re. */
export const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

// FNV-1a: a short, stable suffix that keeps two long standby names from sharing a truncated slot name.
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * `dr_<site>_<cluster>` with '-' as '_', e.g. `us/acid-demo` -> `dr_us_acid_demo`. Names over 63 characters are
 * cut and end in a hash of the whole reference, so the slot still says which standby it belongs to.
 */
export function standbySlotName(standbyRef: string): string {
  const { site, cluster } = parseClusterRef(standbyRef, 'standby');
  const name = `dr_${site}_${cluster}`.replace(/-/g, '_');
  return name.length <= 63 ? name : `${name.slice(0, 54)}_${fnv1a(standbyRef)}`;
}

/** Whether a slot name is one runbooks give standbys (`dr_` prefix), as opposed to Patroni's member slots. */
export function isStandbySlotName(slot: string): boolean {
  return slot.startsWith('dr_');
}
