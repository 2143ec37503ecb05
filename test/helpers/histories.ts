// Saved histories of real runs, replayed in CI to prove the runbooks stay deterministic as they change.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporalCliPath } from '../../scripts/lib/temporal-dev-server';
import { testTemporalAddress } from './test-env';

export const HISTORIES_DIR = join(__dirname, '..', 'fixtures', 'histories');

/** A run's history as the Temporal CLI prints it (`workflow show --output json`), the form replay reads. */
export function historyJson(workflowId: string, runId?: string): string {
  return execFileSync(temporalCliPath(), [
    'workflow', 'show', '--address', testTemporalAddress(), '--namespace', 'default',
    '--workflow-id', workflowId, ...(runId ? ['--run-id', runId] : []), '--output', 'json',
  ], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/**
 * Saves the history of a finished run as `<runbook>.<scenario>.json` when it is missing, or always with
 * DR_SAVE_HISTORIES=1 (after an intended change of a runbook).
 */
export async function saveHistory(handle: WorkflowHandle, name: string): Promise<void> {
  const file = join(HISTORIES_DIR, `${name}.json`);
  if (existsSync(file) && process.env.DR_SAVE_HISTORIES !== '1') return;
  mkdirSync(HISTORIES_DIR, { recursive: true });
  const { runId } = await handle.describe();
  writeFileSync(file, historyJson(handle.workflowId, runId));
}
