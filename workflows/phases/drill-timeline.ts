// The drill's timeline (every phase with its start, duration, outcome and last sentence) and the report written
// from it and the findings, passed or failed, to the DR site's bucket.
import { workflowInfo } from '@temporalio/workflow';
import { siteActivities } from '../activity-proxies';
import type { DrillPhase, DrillReport } from '../contracts/drills';
import { failureFacts } from './failures';
import type { DrillPlan } from './drill-plan';
import type { DrillFindings } from './drill-steps';
import type { RunbookRecord } from './runbook-record';

export class DrillTimeline {
  readonly phases: DrillPhase[] = [];
  readonly startedAt = new Date().toISOString();

  constructor(private readonly record: RunbookRecord) {}

  /** One phase of the record (journal, search attributes) that also lands in the report's timeline. */
  async phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    const startedAt = Date.now();
    const seen = this.record.status().journal.length;
    const entry = (outcome: DrillPhase['outcome'], detail: string) =>
      this.phases.push({ phase: name, startedAt: new Date(startedAt).toISOString(), durationMs: Date.now() - startedAt, outcome, detail });
    try {
      const r = await this.record.phase(name, work);
      const steps = this.record.status().journal.slice(seen);
      entry('done', steps.length ? steps[steps.length - 1].message : '');
      return r;
    } catch (err) {
      entry('failed', failureFacts(err).message);
      throw err;
    }
  }

  skipped(name: string, detail: string): void {
    this.phases.push({ phase: name, startedAt: new Date().toISOString(), durationMs: 0, outcome: 'skipped', detail });
    this.record.step(name, 'skipped', detail);
  }
}

export async function storeDrillReport(
  record: RunbookRecord, plan: DrillPlan, timeline: DrillTimeline, findings: DrillFindings, failure: unknown,
): Promise<DrillReport> {
  const report: DrillReport = {
    cluster: plan.source.ref, drSite: plan.drSite, mode: plan.mode,
    workflowId: workflowInfo().workflowId, runId: workflowInfo().runId,
    startedAt: timeline.startedAt, finishedAt: new Date().toISOString(),
    outcome: failure ? 'failed' : 'passed', failure: failure ? failureFacts(failure).message : null,
    drCluster: plan.copy.ref, rtoMs: findings.rtoMs, rpo: findings.rpo, markerFound: findings.markerFound,
    tables: findings.tables, backup: findings.backup, approvals: findings.approvals, timeline: timeline.phases,
    trend: [], stored: null,
  };
  const stored = await siteActivities(plan.drSite).s3StoreDrillReport({ site: plan.drSite, report });
  const last = stored.trend[0];
  record.step('write-report', 'done',
    `Wrote the ${stored.outcome} drill report to ${stored.stored!.markdown} (and .json); ${stored.trend.length} earlier drill(s) in the trend` +
    `${last ? `, the last ${last.outcome} with RTO ${last.rtoMs ?? '?'} ms` : ''}.`,
    { json: stored.stored!.json, markdown: stored.stored!.markdown, trend: stored.trend.length });
  return stored;
}
