// What every benchmark shares: the running sandbox (`./scripts/sandbox up`), a Temporal client, repeated rounds
// and a Markdown table of median and spread. Benchmarks print numbers; they assert nothing.
import { execFileSync } from 'node:child_process';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { acknowledgementsOf, approveAsPeople, openGate, type DecisionTerms } from '../scripts/lib/identity/gate-decision';
import { DEMO_APPROVERS, demoTokens } from '../scripts/lib/sandbox/demo-people';
import { userLayout } from '../scripts/lib/sandbox/layout';
import type { PendingApproval } from '../workflows/contracts/approvals';

export const layout = userLayout();
process.env.DR_SITES_FILE = layout.sitesFile;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Approves the run's open gate as the sandbox's alice (and bob where the gate takes two people), with ID tokens of
 * the sandbox issuer bound to it; `terms` default to exactly the acknowledgements the gate requires.
 */
export async function approveAsSandboxPeople(handle: WorkflowHandle, ticket: string, terms?: Omit<DecisionTerms, 'ticket'>, gate?: PendingApproval): Promise<PendingApproval> {
  const open = gate ?? await openGate(handle);
  await approveAsPeople(handle, open, DEMO_APPROVERS, demoTokens(layout), { ticket, ...(terms ?? acknowledgementsOf(open)) });
  return open;
}

export async function sandboxClient(): Promise<Client> {
  return new Client({ connection: await Connection.connect({ address: `127.0.0.1:${layout.temporalPort}` }) });
}

export function rounds(dflt: number): number {
  const n = Number(process.argv[2] ?? dflt);
  if (!Number.isInteger(n) || n < 1) throw new Error(`rounds must be a whole number >= 1, got ${process.argv[2]}`);
  return n;
}

export function stats(xs: number[]): { median: number; min: number; max: number; n: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : Math.round((s[mid - 1] + s[mid]) / 2);
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

/** A Markdown table: one row per measure, median / min / max over the rounds. */
export function printTable(title: string, unit: string, rows: Array<[string, number[]]>): void {
  console.log(`\n${title}\n\n| measure | median (${unit}) | min | max | rounds |\n| --- | --- | --- | --- | --- |`);
  for (const [name, xs] of rows) {
    if (xs.length === 0) continue;
    const s = stats(xs);
    console.log(`| ${name} | ${s.median} | ${s.min} | ${s.max} | ${s.n} |`);
  }
}

/** Resident memory of the sandbox's Temporal dev server, in MB (null when it cannot be read). */
export function temporalServerRssMb(): number | null {
  try {
    const out = execFileSync('ps', ['-C', 'temporal', '-o', 'rss=,args='], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.includes(`--port ${layout.temporalPort}`));
    return line ? Math.round(Number(line.trim().split(/\s+/)[0]) / 1024) : null;
  } catch {
    return null;
  }
}

/** Side by side: the two measures' medians and their ratio round by round (A/B), so drifting load hits both alike. */
export function printRatio(title: string, a: [string, number[]], b: [string, number[]], goal: number): void {
  const ratios = a[1].map((x, i) => x / b[1][i]);
  const s = stats(ratios.map((r) => Math.round(r * 100)));
  const ofMedians = stats(a[1]).median / stats(b[1]).median;
  const x = (n: number) => `${(n / 100).toFixed(2)}x`;
  console.log(`\n${title}: ${a[0]} / ${b[0]}, round by round: median ${x(s.median)} (min ${x(s.min)}, max ${x(s.max)}, ${s.n} rounds); ` +
    `ratio of the medians ${ofMedians.toFixed(2)}x; goal <= ${goal}x`);
}
