// What every benchmark shares: the running sandbox (`./scripts/sandbox up`), a Temporal client, repeated rounds
// and a Markdown table of median and spread. Benchmarks print numbers; they assert nothing.
import { execFileSync } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { userLayout } from '../scripts/lib/sandbox/layout';

export const layout = userLayout();
process.env.DR_SITES_FILE = layout.sitesFile;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
