// The slot a streaming standby holds on its source: kept from before the standby streams until it stops being
// that source's standby (promoted, torn down, or the pair turned around).
import { keepHeartbeating } from '../keep-heartbeating';
import type { ActivityDeps } from '../deps';
import type { StandbySlotResult } from './site-driver';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { standbySlotName } from '../../workflows/contracts/slots';

export interface StandbySlotInput {
  /** The cluster that keeps the slot (the standby's source), `<site>/<cluster>`. */
  ref: string;
  /** The standby the slot is for, `<site>/<cluster>`: the slot is named after it. */
  standby: string;
}

/** Idempotent: the permanent slot configured and held by the source's leader (unless the source is paused). */
export function createEnsureStandbySlot(deps: ActivityDeps) {
  return async function siteEnsureStandbySlot(input: StandbySlotInput): Promise<StandbySlotResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    const slot = standbySlotName(input.standby);
    return keepHeartbeating(`keeping slot ${slot} on ${input.ref}`, () => deps.driverFor(site).ensureStandbySlot(cluster, slot));
  };
}

/** Idempotent: the slot gone from the source's config and from every running member (`changed: false` when it was not configured). */
export function createDropStandbySlot(deps: ActivityDeps) {
  return async function siteDropStandbySlot(input: StandbySlotInput): Promise<StandbySlotResult> {
    const { site, cluster } = parseClusterRef(input.ref);
    const slot = standbySlotName(input.standby);
    return keepHeartbeating(`dropping slot ${slot} on ${input.ref}`, () => deps.driverFor(site).dropStandbySlot(cluster, slot));
  };
}
