// drctl approve|reject <run>: decide the open approval gate by Update, so the answer is the approval record or
// the gate validator's reason. Who decides is the user of `drctl login`, proven by a fresh ID token whose nonce binds
// it to this decision of the gate open now. Shows the gate (plan, loss, fence) before, the decision and the run after.
import { Option, type Command } from 'commander';
import { decideRunbook, DecisionRefusedError } from '../runbook-client';
import { approvalNonce, type ApprovalDecision, type PendingApproval } from '../../../workflows/contracts/approvals';
import type { ApprovalRecord } from '../../../workflows/contracts/runbooks';
import type { Register } from './context';
import { withDeadline, type Temporal } from './connect';
import { CliError, formatGate, formatStep } from './output';
import { parseRunRef } from './run-ref';
import { pendingApprovalOf, runInfo } from './run-info';
import { clusterList, positiveSeconds } from './options';
import { loggedIn, tokenOfLoggedInUser } from './user-token';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForGate(t: Temporal, workflowId: string, seconds: number): Promise<PendingApproval | null> {
  const handle = t.client.workflow.getHandle(workflowId);
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const gate = await pendingApprovalOf(t, handle);
    if (gate || Date.now() >= deadline) return gate;
    await sleep(500);
  }
}

/** Turns the validator's JSON wording into the flag that fixes it. */
function hint(reason: string): string {
  if (/acknowledgeDataLoss/.test(reason)) return `${reason} (drctl: --acknowledge-data-loss)`;
  if (/acknowledgeUnconfirmedFence/.test(reason)) return `${reason} (drctl: --acknowledge-unconfirmed-fence)`;
  return reason;
}

/** The same approval again, for the next approver: a second approval must agree on the same terms. */
function approveCommandFor(workflowId: string, d: ApprovalDecision): string {
  return `drctl approve ${workflowId} --ticket ${d.ticket}${d.acknowledgeDataLoss ? ' --acknowledge-data-loss' : ''}` +
    `${d.acknowledgeUnconfirmedFence ? ' --acknowledge-unconfirmed-fence' : ''}${d.include?.length ? ` --include ${d.include.join(',')}` : ''}`;
}

/**
 * What proves who decides: an ID token of the logged-in user bound to this gate's challenge and this decision. A run
 * started before verified approvals has no challenge and takes only a name: the logged-in user's.
 */
async function proveDecision(gate: PendingApproval, verb: 'approve' | 'reject', user: string): Promise<{ fields: Partial<ApprovalDecision>; note: string }> {
  if (!gate.challenge) {
    return { fields: { approver: user }, note: `this run started before verified approvals: it takes the name ${user}, unproven` };
  }
  const proof = await tokenOfLoggedInUser(approvalNonce(gate.challenge, verb));
  if (!proof) throw new CliError('usage', `nobody is logged in: drctl login --user <you>, then drctl ${verb} again`);
  return { fields: { idToken: proof.token }, note: `deciding as ${proof.user} of ${proof.issuer} (an ID token bound to gate "${gate.gate}")` };
}

export function defineDecisionCommands(program: Command, register: Register): void {
  for (const approving of [true, false]) {
    const verb: 'approve' | 'reject' = approving ? 'approve' : 'reject';
    let cmd = program.command(verb)
      .description(approving
        ? 'approve the open approval gate of a run (promote, failback, region-failover, disruptive drill)'
        : 'reject the open approval gate of a run: it undoes its fence and stops with nothing promoted')
      .argument('<run...>', 'the run: <runbook>/<site>/<cluster> (e.g. promote/us/acid-demo) or <runbook> <site>/<cluster>; region-failover/<lost site>')
      // Kept only to say why it is gone: a typed name proves nothing.
      .addOption(new Option('--approver <name>').hideHelp())
      .requiredOption('--ticket <id>', 'the incident or change ticket this decision belongs to')
      .option('--comment <text>', approving ? 'why' : 'why not')
      .option('--gate <name>', 'the gate being decided (default: the one open now)')
      .addOption(new Option('--wait-for-gate <seconds>', 'wait this long for a gate to open (the run may still be assessing)').argParser(positiveSeconds));
    if (approving) {
      cmd = cmd
        .option('--acknowledge-data-loss', 'required when the estimated loss exceeds the policy')
        .option('--acknowledge-unconfirmed-fence', 'required when the old primary could not be confirmed fenced')
        .option('--include <clusters>', 'region-failover: clusters over the loss policy to promote anyway, by name (a,b or eu/a,eu/b); needs --acknowledge-data-loss', clusterList('--include'));
    }
    register(cmd, async ({ out, opts, args, temporal }) => {
      const workflowId = parseRunRef(args[0] as string[]);
      if (opts.approver !== undefined) {
        throw new CliError('usage', `--approver is gone: a typed name proves nothing. Log in (drctl login --user <you>), then drctl ${verb} ${workflowId} --ticket <ticket>`);
      }
      const login = loggedIn();
      if (!login) throw new CliError('usage', `nobody is logged in: drctl login --user <you>, then drctl ${verb} again (the decision carries your ID token)`);
      const decision: ApprovalDecision = {
        ticket: opts.ticket,
        ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
        ...(opts.gate !== undefined ? { gate: opts.gate } : {}),
        ...(approving ? { acknowledgeDataLoss: opts.acknowledgeDataLoss === true, acknowledgeUnconfirmedFence: opts.acknowledgeUnconfirmedFence === true } : {}),
        ...(approving && opts.include ? { include: opts.include as string[] } : {}),
      };
      if (decision.include && !decision.acknowledgeDataLoss) {
        throw new CliError('usage', `--include ${decision.include.join(',')} promotes clusters over the loss policy: add --acknowledge-data-loss`, { workflowId, decision });
      }
      const t = await temporal();
      const before = await runInfo(t, workflowId);
      if (before.executionStatus !== 'RUNNING') {
        throw new CliError('refused', `${workflowId} is not running (it ended ${before.outcome ?? before.executionStatus.toLowerCase()}): nothing to ${verb}`, { workflowId, decision });
      }
      const gate = before.pendingApproval ?? (opts.waitForGate ? await waitForGate(t, workflowId, opts.waitForGate) : null);
      if (!gate) {
        throw new CliError('refused',
          `${workflowId} has no approval gate open (phase ${before.phase ?? '?'}, ${before.state}); try again when it asks, or add --wait-for-gate <seconds>`,
          { workflowId, decision });
      }
      out.progress(formatGate(workflowId, gate).join('\n'));
      const proof = await proveDecision(gate, verb, login.username);
      out.progress(proof.note);
      let record: ApprovalRecord;
      try {
        ({ record } = await decideRunbook(t.client, workflowId, { ...decision, ...proof.fields }, approving));
      } catch (err) {
        if (!(err instanceof DecisionRefusedError)) throw err;
        throw new CliError('refused', hint(err.message), { workflowId, decision, gate });
      }
      // The run after the decision: its next steps, once the workflow has taken them (a moment).
      await sleep(1000);
      const handle = t.client.workflow.getHandle(workflowId);
      const after = await withDeadline(t, 10_000, () => handle.describe()).then(() => runInfo(t, workflowId)).catch(() => null);
      const newSteps = after ? after.journal.filter((e) => e.seq > (before.journal.at(-1)?.seq ?? 0)) : [];
      const past = approving ? 'Approved' : 'Rejected';
      const awaiting = record.awaitingApprovers ?? 0;
      return {
        ok: true,
        data: {
          workflowId, decision: record, gate,
          after: after ? { executionStatus: after.executionStatus, phase: after.phase, state: after.state, outcome: after.outcome, newSteps } : null,
        },
        human: [
          `${past} gate "${gate.gate}" of ${workflowId} as ${record.approver} (ticket ${record.ticket}${record.comment ? `, "${record.comment}"` : ''}) at ${record.at}.`,
          ...(awaiting > 0 ? [
            `  ${awaiting} more approver${awaiting > 1 ? 's are' : ' is'} needed: someone other than ${(record.approvers ?? []).map((a) => a.subject).join(', ')} and the run's requester ` +
              `must approve the same terms (drctl login --user <them>; ${approveCommandFor(workflowId, decision)}).`,
          ] : []),
          ...(after ? [`  now: phase ${after.phase ?? '?'} (${after.state}${after.outcome ? `, outcome ${after.outcome}` : ''})`, ...newSteps.map(formatStep)] : []),
          `  follow: drctl status ${workflowId}`,
        ].join('\n'),
      };
    });
  }
}
