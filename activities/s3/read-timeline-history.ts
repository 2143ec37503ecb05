import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import { forkPoint, readTimelineHistory } from './timeline-history';

/**
 * Where `oldTimeline` ended according to the history file of `timeline` in a site's archive: the fork point a
 * former primary on `oldTimeline` is measured against. null history = not archived (yet).
 */
export function createReadTimelineHistory(deps: ActivityDeps) {
  return async function s3ReadTimelineHistory(input: {
    archiveSite: string;
    walPrefix: string;
    timeline: number;
    oldTimeline: number;
  }): Promise<{ found: boolean; forkLsn: string | null; entries: number }> {
    const history = await readTimelineHistory(siteConfig(deps, input.archiveSite).s3, input.walPrefix, input.timeline);
    return { found: history !== null, forkLsn: history ? forkPoint(history, input.oldTimeline) : null, entries: history?.length ?? 0 };
  };
}
