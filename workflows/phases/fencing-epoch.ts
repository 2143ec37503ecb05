// The fencing epoch of a decision (issue #14): 1 + the highest epoch either side of the pair stores. Every fence,
// unfence, promote, rejoin and reseed of the run carries it, and the activity refuses when the cluster stores a
// higher one: a late retry or an older run can then never undo a newer promotion.
import { siteActivities, siteProbeActivities } from '../activity-proxies';
import type { ClusterRef } from '../contracts/clusters';
import { failureFacts } from './failures';
import type { RunbookRecord } from './runbook-record';

type Side = ClusterRef & { ref: string };

/**
 * Reads the epoch stored on `decidedOn` (which must answer) and on `other` when it may answer (a lost source is not
 * waited for: its number, if higher, makes the guard's later fence refuse rather than fence a newer primary).
 */
export async function nextEpoch(
  record: RunbookRecord, decidedOn: Side, other: Side | null, opts: { otherReachable: boolean; regionTimeoutSeconds: number },
): Promise<number> {
  const onDecided = (await siteActivities(decidedOn.site).siteReadEpoch({ ref: decidedOn.ref })).epoch;
  let onOther: number | null = null;
  let otherNote = '';
  if (other && opts.otherReachable) {
    try {
      onOther = (await siteProbeActivities(other.site, opts.regionTimeoutSeconds).siteReadEpoch({ ref: other.ref })).epoch;
    } catch (err) {
      otherNote = ` (${other.ref} not read: ${failureFacts(err).message})`;
    }
  } else if (other) {
    otherNote = ` (${other.ref} not asked: unreachable)`;
  }
  const epoch = 1 + Math.max(onDecided ?? 0, onOther ?? 0);
  record.step('fencing-epoch', 'done',
    `Fencing epoch ${epoch}: ${decidedOn.ref} stored ${onDecided ?? 'none'}${other ? `, ${other.ref} ${onOther ?? 'none'}` : ''}${otherNote}; ` +
    'every fence, unfence, promote and rejoin of this run carries it, and a cluster storing a higher one refuses it.',
    { epoch, [decidedOn.ref]: onDecided, ...(other ? { [other.ref]: onOther } : {}) });
  return epoch;
}

/** `{ epoch }` for an activity input, nothing for runs from before epochs (their inputs stay as they were). */
export const withEpoch = (epoch: number | undefined): { epoch?: number } => (epoch === undefined ? {} : { epoch });
