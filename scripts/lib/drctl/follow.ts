// Following a run to its end: every journal step as it happens (followRunbook), and every approval gate that
// opens — in the run, or in a related run such as a switch-back's child promote — announced once, with how to
// decide it. drctl never decides itself: a human approves from another terminal or the UI, and the run's own
// approval timeout bounds the wait.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { followRunbook } from '../runbook-client';
import type { PendingApproval } from '../../../workflows/contracts/approvals';
import type { JournalEntry } from '../../../workflows/contracts/journal';
import type { Temporal } from './connect';
import { formatGate, formatStep, type Output } from './output';
import { failureOf, pendingApprovalOf, type RunFailure } from './run-info';

export interface GateSeen extends PendingApproval {
  workflowId: string;
}

export interface Followed {
  result: unknown;
  failure: RunFailure | null;
  journal: JournalEntry[];
  approvalsRequested: GateSeen[];
}

export interface FollowOptions {
  alreadyShown?: number;
  pollMs?: number;
  /** A line of progress from the run (region-failover: its progress query), printed whenever it changes. */
  progress?: (t: Temporal, handle: WorkflowHandle) => Promise<string | null>;
}

export async function followRun(
  t: Temporal, handle: WorkflowHandle, out: Output, related: string[] = [], opts: FollowOptions = {},
): Promise<Followed> {
  const pollMs = opts.pollMs ?? 1000;
  const journal: JournalEntry[] = [];
  const gates: GateSeen[] = [];
  const seen = new Set<string>();
  let done = false;
  const watchGates = (async () => {
    const handles = [handle, ...related.map((id) => t.client.workflow.getHandle(id))];
    // After the first journal poll, so the steps that led to a gate print before it.
    await new Promise((r) => setTimeout(r, pollMs));
    let lastProgress: string | null = null;
    while (!done) {
      const line = opts.progress ? await opts.progress(t, handle).catch(() => null) : null;
      if (line && line !== lastProgress && !done) {
        lastProgress = line;
        out.progress(`  ${line}`);
      }
      for (const h of handles) {
        const gate = await pendingApprovalOf(t, h, 5000);
        if (!gate || done) continue;
        const key = `${h.workflowId}#${gate.gate}#${gate.openedAt}`;
        if (seen.has(key)) continue;
        seen.add(key);
        gates.push({ workflowId: h.workflowId, ...gate });
        for (const line of formatGate(h.workflowId, gate)) out.progress(`  ${line}`);
        out.progress('  (still following; Ctrl-C stops following, not the run)');
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  let result: unknown = null;
  let failure: RunFailure | null = null;
  try {
    result = await followRunbook(handle, (e) => {
      journal.push(e);
      if (e.seq > (opts.alreadyShown ?? 0)) out.progress(formatStep(e));
    }, pollMs);
  } catch (err) {
    // Only the run's own failure is an answer; a lost connection is not.
    if (!(err instanceof WorkflowFailedError)) throw err;
    failure = failureOf(err);
  } finally {
    done = true;
    await watchGates;
  }
  return { result, failure, journal, approvalsRequested: gates };
}
