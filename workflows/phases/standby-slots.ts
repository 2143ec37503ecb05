// The replication slot of a streaming standby on its source, in runbook terms: kept before a standby streams
// from a source, released once that cluster is no longer its source. Runs started before slots existed do none
// of this (patch marker), so their histories replay.
import { patched } from '@temporalio/workflow';
import { siteLongActivities } from '../activity-proxies';
import type { ClusterRef } from '../contracts/clusters';
import { standbySlotName } from '../contracts/slots';
import type { RunbookRecord } from './runbook-record';

export const STANDBY_SLOTS_PATCH = 'standby-replication-slots';

/** Whether this run manages standby slots (false while replaying a run started before they existed). */
export function manageStandbySlots(): boolean {
  return patched(STANDBY_SLOTS_PATCH);
}

type Holder = ClusterRef & { ref: string };

/** The permanent slot for `standbyRef` on `holder`, before the standby streams from it; returns the slot's name. */
export async function keepStandbySlot(record: RunbookRecord, holder: Holder, standbyRef: string): Promise<string> {
  const r = await siteLongActivities(holder.site, 120).siteEnsureStandbySlot({ ref: holder.ref, standby: standbyRef });
  record.step('keep-standby-slot', r.changed ? 'done' : 'already',
    `${r.changed ? 'Added' : 'Kept'} permanent replication slot ${r.slot} for ${standbyRef} on ${holder.ref}` +
    `${r.heldBy.length ? ` (held by ${r.heldBy.join(', ')})` : ''}${r.pending ? `; ${r.pending}` : ''}.`,
    { slot: r.slot, heldBy: r.heldBy, pending: r.pending });
  return standbySlotName(standbyRef);
}

/** Drops the slot `holder` kept for `standbyRef`, which no longer streams from it. */
export async function releaseStandbySlot(record: RunbookRecord, holder: Holder, standbyRef: string, why: string): Promise<void> {
  const r = await siteLongActivities(holder.site, 150).siteDropStandbySlot({ ref: holder.ref, standby: standbyRef });
  record.step('release-standby-slot', r.changed ? 'done' : 'already',
    `${r.changed ? 'Removed' : 'No'} replication slot ${r.slot} for ${standbyRef} ${r.changed ? 'from' : 'was configured on'} ${holder.ref} (${why})` +
    `${r.pending ? `; ${r.pending}` : ''}.`,
    { slot: r.slot, heldBy: r.heldBy, pending: r.pending });
}
