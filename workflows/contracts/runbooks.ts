// Inputs and results of the runbooks. These are the JSON shapes a person pastes into the Temporal UI's
// start-workflow form, so every field is plain JSON and documented in the README. Bundle-safe.

export type ReplicationMethod = 'archive' | 'stream' | 'both';

export interface ProvisionStandbyInput {
  /** The cluster to protect, `<site>/<cluster>`, e.g. "eu/acid-demo". */
  source: string;
  /** The standby to build, `<site>/<cluster>`, e.g. "us/acid-demo". */
  target: string;
  /** archive: replay WAL from the source's S3 archive; stream: from the source leader; both: stream with archive fallback. */
  method: ReplicationMethod;
  limits?: {
    /** How long to wait for the standby to replay up to the marker. Default 1800. */
    replayTimeoutSeconds?: number;
    /** How often the replay wait checks and heartbeats. Default 5. */
    pollIntervalSeconds?: number;
  };
}

export interface ProvisionStandbyResult {
  source: string;
  target: string;
  method: ReplicationMethod;
  /** true when the target already was a standby of this source and nothing was changed. */
  alreadyProvisioned: boolean;
  /** The base backup the standby was bootstrapped from (archive methods). */
  baseBackup?: string;
  markerId: string;
  /** LSN of the marker on the source, and the standby's replayed LSN when it became visible. */
  markerLsn: string;
  replayedLsn: string;
  /** Bytes the standby was behind the source's current LSN at the end (null if the source could not be read). */
  lagBytesAtEnd: number | null;
  phaseDurationsMs: Record<string, number>;
}

export const RUNBOOK_NAMES = {
  provisionStandby: 'provision-standby',
} as const;

/** Workflow IDs are business keys: one run of a runbook per cluster at a time. */
export function runbookWorkflowId(runbook: string, clusterRef: string): string {
  return `${runbook}/${clusterRef}`;
}
