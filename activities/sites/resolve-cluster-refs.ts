import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import { parseClusterRef } from '../../workflows/contracts/clusters';

export interface ResolvedClusterRef {
  ref: string;
  site: string;
  cluster: string;
  kind: string;
}

/** Checks each `<site>/<cluster>` names a site this deployment knows; changes nothing. */
export function createResolveClusterRefs(deps: ActivityDeps) {
  return async function siteResolveClusterRefs(input: { refs: Record<string, string> }): Promise<Record<string, ResolvedClusterRef>> {
    const out: Record<string, ResolvedClusterRef> = {};
    for (const [field, ref] of Object.entries(input.refs)) {
      const parsed = parseClusterRef(ref, field);
      const cfg = siteConfig(deps, parsed.site);
      out[field] = { ref, site: parsed.site, cluster: parsed.cluster, kind: cfg.kind };
    }
    return out;
  };
}

/** Every site of the sites file, by name (standby-lag checks all of them). Changes nothing. */
export function createListSites(deps: ActivityDeps) {
  // The argument keeps the call shape of every other activity (one input object), so a later filter needs no new type.
  return async function siteListSites(_input: Record<string, never>): Promise<string[]> {
    return Object.keys(deps.sites.sites).sort();
  };
}

/** Checks each site is in the sites file; answers with its kind. Changes nothing. */
export function createResolveSites(deps: ActivityDeps) {
  return async function siteResolveSites(input: { sites: Record<string, string> }): Promise<Record<string, { site: string; kind: string }>> {
    const out: Record<string, { site: string; kind: string }> = {};
    for (const [field, site] of Object.entries(input.sites)) out[field] = { site, kind: siteConfig(deps, site).kind };
    return out;
  };
}
