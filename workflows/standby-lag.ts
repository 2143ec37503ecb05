// standby-lag: a read-only check of every archive-fed standby (or the ones named): bytes and seconds between the
// newest WAL segment in its source's archive and what it has replayed, against a threshold (the policy, or the
// standby's own labels). Over the threshold, or not measurable, pages a human through the escalation path every
// other runbook uses. Changes nothing, so it runs at any time and on a Temporal Schedule.
import { workflowInfo } from '@temporalio/workflow';
import { control, siteProbeActivities } from './activity-proxies';
import { parseClusterRef } from './contracts/clusters';
import { RUNBOOK_NAMES } from './contracts/runbooks';
import {
  judgeStandbyLag, parseStandbyLagInput, type StandbyLagInput, type StandbyLagMeasurement, type StandbyLagPlan,
  type StandbyLagResult, type StandbyLagRow,
} from './contracts/standby-lag';
import { check, failureFacts } from './phases/failures';
import { RunbookRecord } from './phases/runbook-record';

// A site whose worker does not pick the task up within this long counts as not answering.
const SITE_TIMEOUT_SECONDS = 30;

export async function standbyLag(input: StandbyLagInput): Promise<StandbyLagResult> {
  const named = Array.isArray(input?.clusters) && input.clusters.length === 1 ? String(input.clusters[0]) : '*/*';
  const record = new RunbookRecord(RUNBOOK_NAMES.standbyLag, named);
  try {
    const plan = await record.phase('validate', async () => {
      const p = check(() => parseStandbyLagInput(input));
      if (p.clusters) await control.siteResolveClusterRefs({ refs: Object.fromEntries(p.clusters.map((c, i) => [`clusters[${i}]`, c])) });
      record.step('validate', 'done',
        `Checking ${p.clusters ? p.clusters.join(', ') : 'every standby of every site'} against ${p.threshold.maxBytes} bytes / ${p.threshold.maxSeconds} s (labels may override per standby)${p.page ? '' : ', without paging'}.`,
        { threshold: p.threshold, page: p.page });
      return p;
    });
    const found = await record.phase('discover', () => discover(record, plan));
    const rows = await record.phase('measure', () => measure(record, plan, found));
    const paged = plan.page ? await record.phase('page', () => page(record, rows)) : [];
    const result: StandbyLagResult = {
      checked: rows.filter((r) => r.status === 'ok' || r.status === 'over' || r.status === 'unknown').length,
      over: rows.filter((r) => r.status === 'over').length,
      unknown: rows.filter((r) => r.status === 'unknown').length,
      rows: rows.map((r) => ({ ...r, paged: paged.includes(r.standby) })),
      paged,
    };
    record.step('report', 'done',
      `${result.checked} standbys measured: ${result.over} over their threshold, ${result.unknown} not measurable${paged.length ? `; paged for ${paged.join(', ')}` : ''}.`,
      { checked: result.checked, over: result.over, unknown: result.unknown, paged });
    record.finish(result.over || result.unknown ? 'lagging' : 'succeeded');
    return result;
  } catch (err) {
    record.failed(err, { changedAnything: false });
    throw err;
  }
}

interface Found {
  refs: string[];
  /** Sites that did not answer the listing: their standbys are unknown. */
  silentSites: Array<{ site: string; why: string }>;
}

/** The standbys named, or every cluster of every site that records a source (drill throwaways left out). */
async function discover(record: RunbookRecord, plan: StandbyLagPlan): Promise<Found> {
  if (plan.clusters) return { refs: plan.clusters, silentSites: [] };
  const sites = await control.siteListSites({});
  const refs: string[] = [];
  const silentSites: Found['silentSites'] = [];
  await Promise.all(sites.map(async (site) => {
    try {
      const listed = await siteProbeActivities(site, SITE_TIMEOUT_SECONDS).siteListClusters({ site });
      for (const c of listed) if (c.recordedSourceRef && !c.drill) refs.push(`${site}/${c.cluster}`);
    } catch (err) {
      silentSites.push({ site, why: failureFacts(err).message });
    }
  }));
  refs.sort();
  record.step('discover', silentSites.length ? 'failed' : 'done',
    `Found ${refs.length} clusters that record a source: ${refs.join(', ') || 'none'}` +
      `${silentSites.length ? `; site${silentSites.length > 1 ? 's' : ''} ${silentSites.map((s) => s.site).join(', ')} did not answer` : ''}.`,
    { clusters: refs, silentSites: silentSites.map((s) => s.site) });
  return { refs, silentSites };
}

async function measure(record: RunbookRecord, plan: StandbyLagPlan, found: Found): Promise<StandbyLagRow[]> {
  const rows = await Promise.all(found.refs.map(async (ref): Promise<StandbyLagRow> => {
    const site = parseClusterRef(ref).site;
    try {
      const m = await siteProbeActivities(site, SITE_TIMEOUT_SECONDS).siteStandbyLag({ ref });
      return judgeStandbyLag(m, plan.threshold);
    } catch (err) {
      return judgeStandbyLag(unmeasured(ref, `could not be measured: ${failureFacts(err).message}`), plan.threshold);
    }
  }));
  for (const s of found.silentSites) {
    rows.push(judgeStandbyLag(unmeasured(`${s.site}/*`, `site ${s.site} did not list its clusters: ${s.why}`), plan.threshold));
  }
  // Promoted clusters and streaming-only standbys found by discovery are not this check's business.
  const kept = rows.filter((r) => plan.clusters || (r.status !== 'not-a-standby' && r.status !== 'not-archive-fed'));
  for (const r of kept) {
    record.step('measure', r.status === 'ok' ? 'done' : r.status === 'over' || r.status === 'unknown' ? 'failed' : 'skipped', r.reason,
      { standby: r.standby, status: r.status, bytes: r.bytes, seconds: r.seconds, threshold: r.threshold });
  }
  return kept;
}

function unmeasured(ref: string, problem: string): StandbyLagMeasurement {
  return {
    standby: ref, source: null, skip: null, problem, streams: false, labels: {}, replayedLsn: null, lastReplayedCommitAt: null,
    replayPauseState: null, archivedSegment: null, archiveEndLsn: null, archivedAt: null, bytes: null, seconds: null, measuredAt: null,
  };
}

/** One page per standby over its threshold or not measurable; a page that cannot be sent is journaled, not fatal. */
async function page(record: RunbookRecord, rows: StandbyLagRow[]): Promise<string[]> {
  const paged: string[] = [];
  for (const r of rows.filter((x) => x.status === 'over' || x.status === 'unknown')) {
    try {
      await control.notifyEscalation({
        runbook: RUNBOOK_NAMES.standbyLag, workflowId: workflowInfo().workflowId, cluster: r.standby, reason: r.reason,
        action: r.status === 'over'
          ? `check why ${r.standby} replays slowly from ${r.source ?? 'its source'}'s archive (replay paused? restore_command failing? S3 reachable from its site?); a promotion now would lose this much`
          : `check that ${r.standby} and its site answer; until it is measured, its loss on a promotion is unknown`,
      });
      paged.push(r.standby);
      record.step('page', 'done', `Paged for ${r.standby}: ${r.reason}.`, { standby: r.standby });
    } catch (err) {
      record.step('page', 'failed', `Could not page for ${r.standby}: ${failureFacts(err).message}.`, { standby: r.standby });
    }
  }
  return paged;
}
