// region-failover: evacuate every protected cluster of a lost site to its standby at a surviving site, tier by
// tier, with one human decision and a failure budget. Plain JSON for the UI's start form. Bundle-safe.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ApprovalRecord, DataLossPolicy, FenceState, LossEstimate } from './runbooks';

export interface RegionFailoverInput {
  /**
   * Who starts the run, proven: the ID token of `drctl login` with the nonce "start:<workflowId>". Without it the
   * run is "unauthenticated", which the sites file's approvals policy may refuse; the requester cannot approve.
   */
  requesterIdToken?: string;
  /** The site that is lost (or being evacuated), e.g. "eu". */
  lostSite: string;
  /** The site whose standbys take over, e.g. "us". */
  survivingSite: string;
  /**
   * Which clusters of the lost site to evacuate. `clusters` names them (cluster names at the lost site); `labels`
   * selects standbys at the surviving site by their labels. Default: every standby of the lost site.
   */
  selector?: { clusters?: string[]; labels?: Record<string, string> };
  /**
   * Promotion order: lower tiers first. `clusters` maps a cluster name to its tier; otherwise the standby's label
   * `label` (default "dr-tier") is read as a number; unlabelled clusters go last (`defaultTier`, default 9).
   */
  tiers?: { clusters?: Record<string, number>; label?: string; defaultTier?: number };
  /** Child promotions running at once. Default 4. */
  concurrency?: number;
  /** Loss assessments running at once. Default 8. */
  assessConcurrency?: number;
  /**
   * After `maxFailures` failed promotions (default 1): "pause" asks a human to continue, skip the rest of the
   * tier or stop (default); "stop" stops starting promotions at once.
   */
  failureBudget?: { maxFailures?: number; onExceeded?: 'pause' | 'stop' };
  /** "once" (default): one approval for the whole evacuation; "per-tier": one before each tier starts. */
  approvalMode?: 'once' | 'per-tier';
  /** Clusters whose estimated loss exceeds it are left out unless the approval includes them by name. Default 0/0. */
  dataLossPolicy?: DataLossPolicy;
  /** How long a human has to decide at each gate. Default 3600. */
  approvalTimeoutSeconds?: number;
  /** Each promotion takes and proves its first backup. Default true. */
  takeBackup?: boolean;
  limits?: {
    /** How long the lost site's worker may take to answer the one reachability probe. Default 15. */
    regionTimeoutSeconds?: number;
    /** Promotions finished per workflow run before it continues as new (history stays small). Default 200. */
    promotionsPerRun?: number;
  };
}

export type RegionClusterOutcome =
  | 'pending' | 'running' | 'promoted' | 'already-promoted' | 'failed'
  | 'excluded-over-policy' | 'no-standby' | 'not-a-standby' | 'unhealthy' | 'skipped' | 'stopped';

/** One line of the evacuation table: a cluster of the lost site and what became of its standby. */
export interface RegionClusterRow {
  /** The lost site's cluster, `<lostSite>/<cluster>`. */
  cluster: string;
  /** Its standby at the surviving site, `<survivingSite>/<cluster>`, or null when it has none. */
  standby: string | null;
  tier: number;
  labels: Record<string, string>;
  estimate: LossEstimate | null;
  fence: FenceState | null;
  outcome: RegionClusterOutcome;
  /** The child promote's workflow ID (`promote/<site>/<cluster>`), once started or joined. */
  workflowId: string | null;
  /** true when a promotion of this cluster was already running and the evacuation waited for it instead. */
  joined: boolean;
  rtoMs: number | null;
  lossBytes: number | null;
  backup: string | null;
  /** Why it failed, was excluded or skipped. */
  reason: string | null;
  startedAt: string | null;
  durationMs: number | null;
}

export interface RegionFailoverProgress {
  lostSite: string;
  survivingSite: string;
  /** The runbook's phase (validate, discover, assess, approve, approve-tier-N, promote-tier-N, done), or "paused" on the failure budget. */
  phase: string;
  tier: number | null;
  total: number;
  done: number;
  running: number;
  failed: number;
  /** Left out: over policy, no standby, skipped or stopped. */
  notPromoted: number;
  pending: number;
  /** The longest-running promotion now, if any. */
  slowest: { cluster: string; runningMs: number } | null;
  /** Which workflow run of the evacuation this is (continue-as-new count + 1). */
  run: number;
}

export interface RegionFailoverResult {
  lostSite: string;
  survivingSite: string;
  /** completed: every approved cluster promoted; with-failures: some failed; stopped: a human or the budget stopped it. */
  outcome: 'completed' | 'completed-with-failures' | 'stopped';
  approvals: ApprovalRecord[];
  budgetDecisions: FailureBudgetRecord[];
  clusters: RegionClusterRow[];
  /** Workflow runs the evacuation took (continue-as-new keeps each history small). */
  runs: number;
  totalMs: number;
}

/** A human's answer when the failure budget is spent. */
export interface FailureBudgetDecision {
  /** continue: allow as many failures again; skip: leave the rest of this tier and go on; stop: start nothing more. */
  decision: 'continue' | 'skip' | 'stop';
  approver: string;
  ticket: string;
  comment?: string;
}

export interface FailureBudgetRecord extends FailureBudgetDecision {
  at: string;
  failuresSoFar: number;
  tier: number;
}

export const getRegionProgressQuery = defineQuery<RegionFailoverProgress>('getRegionProgress');
export const getRegionTableQuery = defineQuery<RegionClusterRow[]>('getRegionTable');
export const resolveFailureBudgetUpdate = defineUpdate<FailureBudgetRecord, [FailureBudgetDecision]>('resolveFailureBudget');

export const REGION_FAILOVER_DEFAULTS = {
  concurrency: 4,
  assessConcurrency: 8,
  maxFailures: 1,
  tierLabel: 'dr-tier',
  defaultTier: 9,
  regionTimeoutSeconds: 15,
  promotionsPerRun: 200,
  approvalTimeoutSeconds: 3600,
} as const;

/** One evacuation of a site at a time: `region-failover/<lostSite>` (its DrCluster search attribute is `<lostSite>/*`). */
export function regionFailoverWorkflowId(lostSite: string): string {
  return `region-failover/${lostSite}`;
}
