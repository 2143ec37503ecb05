// The step journal: what a runbook did, one past-tense sentence per step. Bundle-safe.
import { defineQuery } from '@temporalio/workflow';

export type StepOutcome = 'done' | 'already' | 'skipped' | 'waiting' | 'refused' | 'failed';

export interface JournalEntry {
  seq: number;
  /** ISO time from the workflow clock (deterministic). */
  at: string;
  phase: string;
  step: string;
  outcome: StepOutcome;
  message: string;
  facts?: Record<string, unknown>;
}

export interface RunbookStatus {
  runbook: string;
  cluster: string;
  phase: string;
  state: 'running' | 'waiting' | 'succeeded' | 'failed';
  journal: JournalEntry[];
  /** Milliseconds spent in each finished phase, in order. */
  phaseDurationsMs: Record<string, number>;
}

export const getJournalQuery = defineQuery<JournalEntry[]>('getJournal');
export const getStatusQuery = defineQuery<RunbookStatus>('getStatus');
