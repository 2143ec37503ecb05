// What scripts/test does with the result files of its concurrent jest shards:
//   tsx scripts/lib/jest-shards.ts merge OUT.json SHARD.json...   one result, as if one jest had run every file
//   tsx scripts/lib/jest-shards.ts summary RESULT.json            the suite's last line, "N passed, N failed"
//   tsx scripts/lib/jest-shards.ts durations RESULT.json          refreshes test/helpers/test-durations.json
// A shard that wrote no result (it crashed before the end) counts as one failure: the run never passes by omission.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

interface FileResult { name: string; startTime: number; endTime: number; assertionResults: Array<{ status: string }> }
interface JestResult {
  success: boolean; startTime: number; numPassedTests: number; numFailedTests: number; numPendingTests: number;
  numTotalTests: number; numPassedTestSuites: number; numFailedTestSuites: number; numTotalTestSuites: number;
  numRuntimeErrorTestSuites: number; testResults: FileResult[];
  /** Shards that ended without writing a result; only in a merged result. */
  missingShards?: string[];
}

const ROOT = resolve(__dirname, '..', '..');
const COUNTS = [
  'numPassedTests', 'numFailedTests', 'numPendingTests', 'numTotalTests', 'numPassedTestSuites', 'numFailedTestSuites',
  'numTotalTestSuites', 'numRuntimeErrorTestSuites',
] as const;

const read = (file: string): JestResult => JSON.parse(readFileSync(file, 'utf8')) as JestResult;

export function mergeResults(files: string[]): JestResult {
  const present = files.filter((f) => existsSync(f) && readFileSync(f, 'utf8').trim() !== '');
  const results = present.map(read);
  const merged: JestResult = {
    success: results.length === files.length && results.every((r) => r.success),
    startTime: Math.min(...results.map((r) => r.startTime), Date.now()),
    numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTotalTests: 0, numPassedTestSuites: 0,
    numFailedTestSuites: 0, numTotalTestSuites: 0, numRuntimeErrorTestSuites: 0,
    testResults: results.flatMap((r) => r.testResults),
    missingShards: files.filter((f) => !present.includes(f)),
  };
  for (const r of results) for (const k of COUNTS) merged[k] += r[k];
  return merged;
}

export function summaryLine(r: JestResult): string[] {
  const lines: string[] = [];
  const withFailedTests = r.testResults.filter((s) => s.assertionResults.some((a) => a.status === 'failed')).length;
  const failedOutside = Math.max(0, r.numFailedTestSuites - withFailedTests);
  const missing = r.missingShards?.length ?? 0;
  if (failedOutside > 0) lines.push(`${failedOutside} test file(s) failed outside any test (setup or compile errors)`);
  if (missing > 0) lines.push(`${missing} shard(s) wrote no result: ${r.missingShards!.join(', ')}`);
  lines.push(`${r.numPassedTests} passed, ${r.numFailedTests + failedOutside + missing} failed`);
  return lines;
}

/** Seconds per test file, rounded up, for the sequencer's balanced split; files this run did not execute keep theirs. */
export function refreshDurations(r: JestResult, durationsFile: string): void {
  const seconds: Record<string, number> = existsSync(durationsFile) ? JSON.parse(readFileSync(durationsFile, 'utf8')) : {};
  for (const f of r.testResults) seconds[relative(ROOT, f.name)] = Math.ceil((f.endTime - f.startTime) / 1000);
  const sorted = Object.fromEntries(Object.entries(seconds).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(durationsFile, `${JSON.stringify(sorted, null, 2)}\n`);
}

if (require.main === module) {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'merge' && args.length >= 2) {
    writeFileSync(args[0], JSON.stringify(mergeResults(args.slice(1))));
  } else if (command === 'summary' && args.length === 1) {
    const file = args[0];
    const result = existsSync(file) ? read(file) : mergeResults([file]);
    for (const line of summaryLine(result)) console.log(line);
  } else if (command === 'durations' && args.length === 1) {
    refreshDurations(read(args[0]), join(ROOT, 'test', 'helpers', 'test-durations.json'));
  } else {
    console.error('usage: jest-shards.ts merge OUT.json SHARD.json... | summary RESULT.json | durations RESULT.json');
    process.exit(2);
  }
}
