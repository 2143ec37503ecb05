// drill: rehearse a failover of one cluster and write down what it would have cost. Non-disruptive by default
// (a throwaway standby at the DR site, built from the archive, promoted, verified, backed up and torn down);
// "disruptive" runs the real promote + failback + switchback cycle with its approvals. Bundle-safe.
import type { ApprovalRecord } from './runbooks';

export type DrillMode = 'non-disruptive' | 'disruptive';

export interface DrillInput {
  /** The protected cluster (a primary), `<site>/<cluster>`, e.g. "eu/acid-demo". */
  cluster: string;
  /** The DR site that would take over, e.g. "us". */
  drSite: string;
  /** Default "non-disruptive". */
  mode?: DrillMode;
  /** disruptive: its real standby at the DR site; default `<drSite>/<same cluster name>`. */
  standby?: string;
  /** Data checks on the promoted copy: marker row always; row counts of these tables (schema.table) compared. */
  verifyTables?: string[];
  /**
   * non-disruptive: the throwaway's name at drSite; default `<cluster>-drill`. A valid Zalando name (team id and a
   * dash first, at most 53 characters); a cluster of that name that no drill created is never touched.
   */
  throwawayName?: string;
  /** Keep the throwaway cluster for inspection instead of tearing it down. Default false. */
  keepThrowaway?: boolean;
  /**
   * Who starts it, proven (the ID token of `drctl login`, nonce "start:<workflowId>"): someone the approvals policy
   * lets approve the promotion of the real standby. Disruptive drills only (a non-disruptive one touches a throwaway).
   */
  requesterIdToken?: string;
  /** disruptive only: how long a human has at each gate. Default 3600. */
  approvalTimeoutSeconds?: number;
  limits?: {
    /** How long the throwaway standby may take to replay up to the drill's marker. Default 1800. */
    replayTimeoutSeconds?: number;
  };
}

export interface DrillPhase {
  phase: string;
  startedAt: string;
  durationMs: number;
  outcome: 'done' | 'failed' | 'skipped';
  detail: string;
}

export interface DrillTableCheck {
  table: string;
  /** Rows on the source at the marker, and on the promoted copy. */
  sourceRows: number | null;
  drillRows: number | null;
  matches: boolean;
}

export interface DrillReport {
  cluster: string;
  drSite: string;
  mode: DrillMode;
  workflowId: string;
  runId: string;
  startedAt: string;
  finishedAt: string;
  outcome: 'passed' | 'failed';
  /** Why it failed, in one sentence; null when it passed. */
  failure: string | null;
  /** The throwaway cluster `<drSite>/<name>` (non-disruptive), or the real standby (disruptive). */
  drCluster: string;
  /** Milliseconds from the decision to promote to the first accepted write on the DR copy. */
  rtoMs: number | null;
  /** What a failover at the drill's start would have lost had only the archive survived. */
  rpo: { bytes: number | null; seconds: number | null; basis: 'archive' | 'source' | 'none' };
  markerFound: boolean;
  tables: DrillTableCheck[];
  backup: { name: string; finishLsn: string; sentinelKey: string } | null;
  approvals: ApprovalRecord[];
  timeline: DrillPhase[];
  /** The previous drills of this cluster (newest first), for the trend. */
  trend: Array<{ workflowId: string; startedAt: string; outcome: 'passed' | 'failed'; rtoMs: number | null; rpoBytes: number | null }>;
  /** Where the report was written: `s3://.../drills/<cluster>/<startedAt>.{json,md}`. */
  stored: { json: string; markdown: string } | null;
}

export type DrillResult = DrillReport;
