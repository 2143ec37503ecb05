// Each chaos test appends one JSON line of what it injected and what it saw; scripts/lib/reliability-report.ts
// turns the lines into docs/RELIABILITY.md.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeReliabilityReport } from '../../scripts/lib/reliability-report';
import { REPO_ROOT, testLayout } from '../helpers/test-env';

// In the suite's own folder, which the global setup wipes: the report is of this run only. scripts/test names one
// file for all its concurrent shards (each appends whole lines), so the report covers every shard's faults.
export const RESULTS_FILE = () => process.env.DR_TEST_CHAOS_RESULTS ?? join(testLayout().dir, 'chaos-results.jsonl');
// docs/RELIABILITY.md only when asked (like DR_SAVE_HISTORIES): a partial run must not replace the committed table.
export const REPORT_FILE = () => (process.env.DR_SAVE_RELIABILITY === '1' ? join(REPO_ROOT, 'docs', 'RELIABILITY.md') : join(testLayout().dir, 'RELIABILITY.md'));

export interface ChaosResult {
  fault: string;
  injected: string;
  outcome: 'pass' | 'fail';
  observed: string;
  seconds: number;
}

/** Runs one fault scenario and records its outcome, pass or fail, then rethrows a failure for jest. */
export async function recordFault(fault: string, injected: string, fn: (observe: (s: string) => void) => Promise<void>): Promise<void> {
  const t0 = Date.now();
  const observed: string[] = [];
  try {
    await fn((s) => observed.push(s));
  } catch (err) {
    observed.push(`FAILED: ${String((err as Error)?.message ?? err).split('\n')[0].slice(0, 300)}`);
    write({ fault, injected, outcome: 'fail', observed: observed.join('; '), seconds: Math.round((Date.now() - t0) / 1000) });
    throw err;
  }
  write({ fault, injected, outcome: 'pass', observed: observed.join('; '), seconds: Math.round((Date.now() - t0) / 1000) });
}

/** A fact a test observed about a fault without asserting it: what the product does not do yet, stated honestly. */
export function recordGap(fault: string, injected: string, observed: string): void {
  write({ fault, injected, outcome: 'fail', observed, seconds: 0 });
}

// Rewritten after every fault, so the table is complete after the last chaos file whatever order jest picks.
function write(r: ChaosResult): void {
  appendFileSync(RESULTS_FILE(), `${JSON.stringify({ ...r, at: new Date().toISOString() })}\n`);
  writeReliabilityReport(RESULTS_FILE(), REPORT_FILE());
}
