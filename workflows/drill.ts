// drill: rehearse the failover of one cluster and write down what it would have cost. Non-disruptive (default):
// a throwaway standby at the DR site built from the archive only, promoted, checked against a marker and row
// counts, backed up and torn down; the real source gets one marker row, the real standby nothing. Disruptive: the
// real planned promote, failback and switchback as child runbooks with their approvals. Either way a report
// (JSON and Markdown, with the trend of earlier drills) goes to the DR site's bucket, and a failed drill fails
// the run after its report is written and its throwaway removed, so a Schedule pauses on it.
import { CancellationScope, patched } from '@temporalio/workflow';
import { RUNBOOK_NAMES } from './contracts/runbooks';
import type { DrillInput, DrillResult } from './contracts/drills';
import { failBackAndSwitchBack, promoteRealStandby } from './phases/drill-disruptive';
import { checkDrillArchives, failOnChildArchiveChecks } from './phases/drill-archive-check';
import { validateDrill, type DrillPlan } from './phases/drill-plan';
import {
  markSource, measureArchiveRpo, promoteThrowaway, proveBackup, provisionThrowaway, teardownThrowaway, verifyCopy, waitForMarker,
  type DrillFindings, type DrillMarker,
} from './phases/drill-steps';
import { DrillTimeline, storeDrillReport } from './phases/drill-timeline';
import { RunbookRecord } from './phases/runbook-record';
import { requireStarterAuthority } from './phases/verified-decision';
import { STARTER_AUTHORITY_PATCH } from './contracts/approvals';

export async function drill(input: DrillInput): Promise<DrillResult> {
  const record = new RunbookRecord(RUNBOOK_NAMES.drill, String(input?.cluster ?? 'unknown'));
  const timeline = new DrillTimeline(record);
  let plan: DrillPlan;
  try {
    plan = await timeline.phase('validate', () => validateDrill(record, input));
    // A disruptive drill promotes the real standby and switches back: its starter needs that promotion's authority.
    if (plan.mode === 'disruptive' && patched(STARTER_AUTHORITY_PATCH)) {
      await requireStarterAuthority(record, input.requesterIdToken, { runbook: RUNBOOK_NAMES.promote, target: plan.copy.ref, gate: 'promote' },
        `a disruptive drill of ${plan.source.ref}`);
    }
  } catch (err) {
    // Refused before anything changed: no site may even be known to write a report to.
    record.failed(err, { changedAnything: false });
    throw err;
  }
  const findings: DrillFindings = {
    rpo: { bytes: null, seconds: null, basis: 'none' }, markerFound: false, tables: [], rtoMs: null, backup: null, approvals: [],
  };
  // Set once the drill creates or changes a cluster: from then on every error is a failure, and a throwaway is removed.
  let changing = false;
  let failure: unknown = null;
  try {
    findings.rpo = await timeline.phase('measure-rpo', () => measureArchiveRpo(record, plan));
    const marker = await timeline.phase('mark-source', () => markSource(record, plan));
    changing = true;
    if (plan.mode === 'disruptive') await rehearseRealCycle(record, timeline, plan, marker, findings);
    else await rehearseOnThrowaway(record, timeline, plan, marker, findings);
  } catch (err) {
    failure = err;
  }
  // Cleaning up and reporting must happen even when the run is being cancelled.
  return CancellationScope.nonCancellable(async () => {
    if (changing && plan.mode === 'non-disruptive') {
      if (plan.keepThrowaway) timeline.skipped('teardown', `Kept throwaway ${plan.copy.ref} for inspection (keepThrowaway); the next drill of ${plan.source.ref} replaces it.`);
      else await timeline.phase('teardown', () => teardownThrowaway(record, plan, 'throwaway')).catch((err) => { failure ??= err; });
    }
    const report = await timeline.phase('report', () => storeDrillReport(record, plan, timeline, findings, failure)).catch((err) => {
      failure ??= err;
      return null;
    });
    if (failure) {
      record.failed(failure, { changedAnything: changing });
      throw failure;
    }
    record.finish('succeeded');
    return report!;
  });
}

async function rehearseOnThrowaway(record: RunbookRecord, timeline: DrillTimeline, plan: DrillPlan, marker: DrillMarker, findings: DrillFindings): Promise<void> {
  await timeline.phase('provision-throwaway', () => provisionThrowaway(record, plan));
  await timeline.phase('wait-for-marker', () => waitForMarker(record, plan, marker));
  const promoted = await timeline.phase('promote-throwaway', () => promoteThrowaway(record, plan, marker));
  findings.rtoMs = promoted.rtoMs;
  await timeline.phase('verify-data', () => verifyCopy(record, plan, marker, findings));
  const b = await timeline.phase('prove-backup', () => proveBackup(record, plan, promoted.lsn, promoted.walPrefix));
  findings.backup = { name: b.backupName, finishLsn: b.finishLsn, sentinelKey: b.sentinelKey };
  // Runs from before the check have no such step (patch marker).
  if (patched('drill-archive-check')) {
    await timeline.phase('check-archive', () => checkDrillArchives(record, plan, { walPrefix: promoted.walPrefix, backupName: b.backupName }));
  }
}

async function rehearseRealCycle(record: RunbookRecord, timeline: DrillTimeline, plan: DrillPlan, marker: DrillMarker, findings: DrillFindings): Promise<void> {
  await timeline.phase('wait-for-marker', () => waitForMarker(record, plan, marker));
  const promoted = await timeline.phase('promote-standby', () => promoteRealStandby(record, plan, findings));
  await timeline.phase('verify-data', () => verifyCopy(record, plan, marker, findings));
  const failedBack = await timeline.phase('fail-back', () => failBackAndSwitchBack(record, plan, findings));
  // The children checked their archives and paged on a gap; the drill fails on it too (runs since the patch).
  if (patched('drill-archive-check')) failOnChildArchiveChecks(promoted, failedBack);
}
