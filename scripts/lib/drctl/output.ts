// The human/JSON split. In --json mode stdout carries exactly one JSON document (also on failure) and nothing
// goes to stderr but a one-line error; in human mode progress goes to stderr and the answer to stdout.
import type { JournalEntry } from '../../../workflows/contracts/journal';
import type { PendingApproval } from '../../../workflows/contracts/approvals';

export const EXIT = { ok: 0, failed: 1, usage: 2, connect: 3 } as const;

export type ErrorKind = 'usage' | 'refused' | 'failed' | 'already-running' | 'not-found' | 'connect';

const EXIT_OF: Record<ErrorKind, number> = {
  usage: EXIT.usage, refused: EXIT.failed, failed: EXIT.failed, 'already-running': EXIT.failed, 'not-found': EXIT.failed, connect: EXIT.connect,
};

/** An error that ends the command with a known exit code and, in --json mode, an error document. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(readonly kind: ErrorKind, message: string, readonly data: Record<string, unknown> = {}) {
    super(message);
    this.exitCode = EXIT_OF[kind];
  }
}

/** What a command answers: the JSON document's fields and the human text, plus whether it counts as success. */
export interface Answer {
  ok: boolean;
  data: Record<string, unknown>;
  human: string;
  /** Set when !ok: why, for the error field of the JSON document. */
  error?: { kind: ErrorKind; message: string; [k: string]: unknown };
}

export class Output {
  constructor(readonly json: boolean, readonly command: string) {}

  /** A line of progress (human mode only, on stderr). */
  progress(line: string): void {
    if (!this.json) process.stderr.write(`${line}\n`);
  }

  answer(a: Answer): number {
    if (this.json) {
      writeJson({ ok: a.ok, command: this.command, ...a.data, ...(a.error ? { error: a.error } : {}) });
    } else if (a.human) {
      process.stdout.write(a.human.endsWith('\n') ? a.human : `${a.human}\n`);
    }
    if (a.ok) return EXIT.ok;
    return a.error ? EXIT_OF[a.error.kind] : EXIT.failed;
  }

  fail(err: CliError): number {
    if (this.json) writeJson({ ok: false, command: this.command, ...err.data, error: { kind: err.kind, message: err.message } });
    process.stderr.write(`drctl ${this.command}: ${err.message}\n`);
    return err.exitCode;
  }
}

export function writeJson(doc: unknown): void {
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}

export function formatStep(e: JournalEntry): string {
  return `  ${String(e.seq).padStart(3)} ${e.at.slice(11, 19)} [${e.phase}] ${e.step}: ${e.outcome} — ${e.message}`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Columns padded to their widest cell; the first row is the header. */
export function table(rows: Array<Array<string | number | null | undefined>>): string[] {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
}

/** Region-failover clusters over the loss policy: left out unless the approval includes them by name. */
export function overPolicyClusters(gate: PendingApproval): string[] {
  return (gate.clusters ?? []).filter((c) => c.outcome === 'excluded-over-policy')
    .map((c) => c.cluster.slice(c.cluster.indexOf('/') + 1));
}

/** `drctl approve ...` for this gate, with exactly the acknowledgements it requires. */
export function approveCommand(workflowId: string, gate: PendingApproval): string {
  return `drctl approve ${workflowId} --ticket <ticket>` +
    `${gate.requires.acknowledgeDataLoss ? ' --acknowledge-data-loss' : ''}` +
    `${gate.requires.acknowledgeUnconfirmedFence ? ' --acknowledge-unconfirmed-fence' : ''}`;
}

/** The region-failover gate's table: what each cluster would lose, its fence, and whether it is within the policy. */
export function formatGateClusters(gate: PendingApproval): string[] {
  const rows = gate.clusters ?? [];
  return table([
    ['cluster', 'standby', 'tier', 'est. loss bytes', 'est. loss s', 'basis', 'fence', 'within policy', 'note'],
    ...rows.map((c) => [
      c.cluster, c.standby, c.tier, c.estimate?.bytes ?? (c.estimate ? '?' : null), c.estimate?.seconds ?? (c.estimate ? '?' : null),
      c.estimate?.basis, c.fence, c.estimate ? (c.estimate.withinPolicy ? 'yes' : 'NO') : null,
      c.outcome === 'pending' ? null : `${c.outcome}${c.reason ? `: ${c.reason}` : ''}`,
    ]),
  ]);
}

/** What an open gate waits for and how to decide it. */
export function formatGate(workflowId: string, gate: PendingApproval): string[] {
  const e = gate.estimate;
  const lines = [
    `${workflowId} waits for approval of gate "${gate.gate}" (${gate.runbook} ${gate.cluster}), open since ${gate.openedAt}, until ${gate.expiresAt}:`,
    `  plan:     ${gate.plan}`,
    `  fence:    ${gate.fence}`,
  ];
  if (e) {
    lines.push(`  loss:     ${e.bytes ?? '?'} bytes, ${e.seconds ?? '?'} s (basis ${e.basis}; source ${e.sourceLsn ?? '?'}, standby replayed ${e.standbyReplayedLsn}; ${e.withinPolicy ? 'within' : 'OVER'} policy)`);
  }
  if (gate.clusters) lines.push(`  clusters: ${gate.clusters.length}`, ...formatGateClusters(gate).map((l) => `    ${l}`));
  const needs = [gate.requires.acknowledgeDataLoss && 'the data loss', gate.requires.acknowledgeUnconfirmedFence && 'the unconfirmed fence'].filter(Boolean);
  if (needs.length) lines.push(`  requires: acknowledging ${needs.join(' and ')}`);
  if ((gate.requires.approvers ?? 1) > 1 || gate.signedBy?.length) {
    const signed = gate.signedBy?.map((s) => s.subject).join(', ');
    lines.push(`  approvers: ${gate.requires.approvers ?? 1} different people${signed ? `; approved so far by ${signed}` : ''}`);
  }
  lines.push(`  approve:  ${approveCommand(workflowId, gate)}`);
  const over = overPolicyClusters(gate);
  if (over.length) {
    lines.push(`  over policy, left out unless included: ${over.join(', ')} (approve with --include ${over.join(',')} --acknowledge-data-loss)`);
  }
  lines.push(`  reject:   drctl reject ${workflowId} --ticket <ticket> --comment "<why>"`);
  lines.push(`  (as the user of drctl login: the decision carries an ID token bound to this gate)`);
  return lines;
}
