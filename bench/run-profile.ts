// Where a runbook run's time went, from its Temporal history: every activity (queue wait, run time, retries),
// timer and child workflow, with the gaps between them (workflow tasks, the worker's round trips).
// `npx tsx bench/run-profile.ts <workflowId> [runId]` against the sandbox (DR_SANDBOX_* move it). Reads only.
import { sandboxClient } from './lib';

type Event = { eventId?: unknown; eventTime?: { seconds?: unknown; nanos?: number | null } | null; [k: string]: unknown };

const ms = (e: Event) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.round((e.eventTime?.nanos ?? 0) / 1e6);

async function main(): Promise<void> {
  const [workflowId, runId] = process.argv.slice(2);
  if (!workflowId) throw new Error('usage: bench/run-profile.ts <workflowId> [runId]');
  const client = await sandboxClient();
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const events = (history.events ?? []) as Event[];
  const t0 = ms(events[0]);
  const scheduled = new Map<string, { name: string; at: number }>();
  const started = new Map<string, number>();
  let lastEnd = t0;
  const line = (at: number, what: string) => console.log(`${String(at - t0).padStart(7)} ms  ${what}`);
  for (const e of events) {
    const at = ms(e);
    const id = String(e.eventId);
    const s = e.activityTaskScheduledEventAttributes as { activityType?: { name?: string } } | undefined;
    if (s) scheduled.set(id, { name: s.activityType?.name ?? '?', at });
    const st = e.activityTaskStartedEventAttributes as { scheduledEventId?: unknown; attempt?: number } | undefined;
    if (st) started.set(String(st.scheduledEventId), at);
    const done = (e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes) as
      { scheduledEventId?: unknown } | undefined;
    if (done) {
      const sid = String(done.scheduledEventId);
      const sch = scheduled.get(sid)!;
      const beg = started.get(sid) ?? sch.at;
      const how = e.activityTaskCompletedEventAttributes ? '' : ' FAILED';
      line(sch.at, `${sch.name}${how}: gap before ${sch.at - lastEnd} ms, queued ${beg - sch.at} ms, ran ${at - beg} ms`);
      lastEnd = at;
    }
    if (e.timerStartedEventAttributes) line(at, `timer started ${JSON.stringify((e.timerStartedEventAttributes as { startToFireTimeout?: unknown }).startToFireTimeout)}`);
    if (e.timerFiredEventAttributes) { line(at, 'timer fired'); lastEnd = at; }
    if (e.workflowExecutionCompletedEventAttributes || e.workflowExecutionFailedEventAttributes) line(at, `workflow closed: gap before ${at - lastEnd} ms`);
  }
  await client.connection.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
