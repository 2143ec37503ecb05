// Where a drill report lives and how a person reads it: the S3 keys and the Markdown rendering. Pure code, so
// the report activity, drctl (`drctl report <run>`) and the tests render the same text. Bundle-safe.
import type { DrillReport } from './drills';

/** `drills/<site>/<cluster>/`: the reports of one protected cluster, in the DR site's bucket. */
export function drillReportPrefix(cluster: string): string {
  return `drills/${cluster}/`;
}

/** Keys of one report; the time has no colons so the key needs no escaping and sorts by time. */
export function drillReportKeys(cluster: string, startedAt: string): { json: string; markdown: string } {
  const stamp = startedAt.replace(/:/g, '-');
  const base = `${drillReportPrefix(cluster)}${stamp}`;
  return { json: `${base}.json`, markdown: `${base}.md` };
}

const ms = (v: number | null) => (v === null ? 'n/a' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v} ms`);
const bytes = (v: number | null) => (v === null ? 'unknown' : v >= 1024 * 1024 ? `${(v / 1024 / 1024).toFixed(1)} MiB (${v} bytes)` : `${v} bytes`);
const cell = (v: unknown) => String(v ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderDrillReport(r: DrillReport): string {
  const lines: string[] = [
    `# Drill of ${r.cluster}: ${r.outcome.toUpperCase()}`,
    '',
    `| | |`,
    `| --- | --- |`,
    `| mode | ${r.mode} |`,
    `| DR site | ${r.drSite} |`,
    `| DR copy | ${r.drCluster}${r.mode === 'non-disruptive' ? ' (throwaway)' : ''} |`,
    `| run | ${r.workflowId} / ${r.runId} |`,
    `| started | ${r.startedAt} |`,
    `| finished | ${r.finishedAt} |`,
    `| RTO (promote decision to first accepted write) | ${ms(r.rtoMs)} |`,
    `| RPO (what an archive-only failover at the start would have lost) | ${bytes(r.rpo.bytes)}, ${r.rpo.seconds ?? '?'} s (basis: ${r.rpo.basis}) |`,
    `| marker row on the DR copy | ${r.markerFound ? 'found' : 'NOT found'} |`,
    `| backup of the DR copy | ${r.backup ? `${r.backup.name}, finish LSN ${r.backup.finishLsn}` : 'none'} |`,
  ];
  if (r.failure) lines.push(`| failure | ${cell(r.failure)} |`);
  lines.push('', '## Timeline', '', '| phase | started | duration | outcome | detail |', '| --- | --- | --- | --- | --- |');
  for (const p of r.timeline) lines.push(`| ${p.phase} | ${p.startedAt} | ${ms(p.durationMs)} | ${p.outcome} | ${cell(p.detail)} |`);
  lines.push('', '## Data checks', '');
  if (r.tables.length === 0) lines.push('No tables were named (`verifyTables`): only the marker row was checked.');
  else {
    lines.push('| table | rows on the source at the marker | rows on the DR copy | match |', '| --- | --- | --- | --- |');
    for (const t of r.tables) lines.push(`| ${t.table} | ${t.sourceRows ?? 'n/a'} | ${t.drillRows ?? 'n/a'} | ${t.matches ? 'yes' : 'NO'} |`);
  }
  if (r.backup) lines.push('', `Backup proven by its stop sentinel \`${r.backup.sentinelKey}\`.`);
  lines.push('', '## Approvals', '');
  if (r.approvals.length === 0) lines.push(r.mode === 'non-disruptive' ? 'None needed: nothing real was changed.' : 'None recorded.');
  else {
    lines.push('| decision | approver | ticket | at | via | comment |', '| --- | --- | --- | --- | --- | --- |');
    for (const a of r.approvals) lines.push(`| ${a.decision} | ${cell(a.approver)} | ${cell(a.ticket)} | ${a.at} | ${a.via} | ${cell(a.comment)} |`);
  }
  lines.push('', `## Trend (previous drills of ${r.cluster}, newest first)`, '');
  if (r.trend.length === 0) lines.push('This is the first drill of this cluster on record.');
  else {
    lines.push('| started | outcome | RTO | RPO | run |', '| --- | --- | --- | --- | --- |');
    for (const t of r.trend) lines.push(`| ${t.startedAt} | ${t.outcome} | ${ms(t.rtoMs)} | ${bytes(t.rpoBytes)} | ${t.workflowId} |`);
  }
  if (r.stored) lines.push('', `Stored as \`${r.stored.json}\` and \`${r.stored.markdown}\`.`);
  return lines.join('\n') + '\n';
}
