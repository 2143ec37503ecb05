// The promotion-safety tests (issue #14) that docs/RELIABILITY.md lists: which promise each one attacks and how the
// code before its fix failed it. The outcome is never written here: it is read from the suite's own jest result.

export interface SafetyTest {
  /** Test file, relative to the repository. */
  file: string;
  /** The test's full name as jest reports it (describe + it). */
  name: string;
  /** The promise under attack. */
  promise: 'one writer' | 'no silent loss' | 'right lineage' | 'WAL kept' | 'no stale step' | 'data kept';
  /** How the code before the fix failed this test, as that run printed it. */
  failedBefore: string;
}

export const SAFETY_TESTS: SafetyTest[] = [
  {
    file: 'test/workflows/promote-unconfirmed-fence.test.ts',
    name: "promote: planned switchover with an unconfirmed fence the old primary's site stops answering after the approval: nothing is promoted until a second decision acknowledges the unconfirmed fence",
    promise: 'one writer',
    failedBefore: 'promoted on the early approval: `Expected: "standby_leader" Received: "primary"`',
  },
  {
    file: 'test/workflows/promote-unconfirmed-fence.test.ts',
    name: 'promote: planned switchover with an unconfirmed fence a catch-up timeout lifts the fence: exactly one writable cluster, the old primary',
    promise: 'one writer',
    failedBefore: 'did not fail: the code before already lifted the fence on a catch-up timeout (kept as a regression test)',
  },
  {
    file: 'test/workflows/fence-guard.test.ts',
    name: 'fence-guard stands down when the cluster it guards is the legitimate primary again (switchover, then switchback)',
    promise: 'one writer',
    failedBefore: 'fenced the legitimate primary: `Expected: false Received: true`',
  },
  {
    file: 'test/workflows/fence-guard.test.ts',
    name: 'fence-guard refuses bad input before it touches anything',
    promise: 'one writer',
    failedBefore: 'no input check: `Expected type "BadInputError"`, received `ClusterNotFoundError`',
  },
  {
    file: 'test/workflows/fence-guard.test.ts',
    name: 'fence-guard past its maximum time it pages and keeps guarding (continue-as-new) instead of ending',
    promise: 'one writer',
    failedBefore: 'ended silently: `Expected: "CONTINUED_AS_NEW" Received: "FAILED"`; then (this session) the continued run dropped the epoch: `- "epoch": 7`',
  },
  {
    file: 'test/workflows/fence-guard.test.ts',
    name: 'fence-guard stands down on the fencing epoch when nothing else shows the guarded cluster was promoted again',
    promise: 'one writer',
    failedBefore: 'did not fail: the stand-down on a stale epoch existed, untested (kept as a regression test)',
  },
  {
    file: 'test/workflows/promote-unconfirmed-fence.test.ts',
    name: 'promote: planned switchover with an unconfirmed fence the old primary crashes right before the fence: a confirmed fence with no final LSN re-asks with the measured loss',
    promise: 'no silent loss',
    failedBefore: 'the re-opened gate told of a stopped old primary "plus anything it writes until it is fenced", and the result claimed `writeDowntimeMs: 25253` for a crash nobody timed',
  },
  {
    file: 'test/workflows/region-failover.test.ts',
    name: 'region-failover evacuates eu to us: one approval with the loss table, tiers in order, a failed promotion pauses on the budget, a running promotion is joined, continue-as-new',
    promise: 'right lineage',
    failedBefore: 'did not fail: region-failover\'s children run promote\'s lineage check (kept as a regression test for the child path)',
  },
  {
    file: 'test/workflows/fencing-epoch.test.ts',
    name: 'fencing epoch of a deleted cluster goes with the cluster: nothing is left in etcd for a new cluster of the same name',
    promise: 'no stale step',
    failedBefore: 'the key outlived its cluster: `expect(received).toBeNull() Received: 4`',
  },
  {
    file: 'test/kube/zalando-fence.test.ts',
    name: 'zalando: fencing a cluster whose Patroni is down stops Postgres, scales the postgresql object to 0 (annotated), says so, stays fenced, and unfence restores it',
    promise: 'one writer',
    failedBefore: '`SiteUnreachableError: eu/acid-zfn: no Patroni answers` (no fence at all)',
  },
  {
    file: 'test/workflows/fencing-epoch.test.ts',
    name: "fencing epoch an old run's fence, unfence and demote, replayed after a switchback, are refused and change nothing",
    promise: 'no stale step',
    failedBefore: 'the old fence stopped the current primary and the old demote made it a standby: `Expected: "primary" Received: "standby_leader"`',
  },
  {
    file: 'test/workflows/fencing-epoch.test.ts',
    name: 'fencing epoch round trips A->B->A->B twice: no reclone, no stale keys, epochs strictly increasing and journaled',
    promise: 'no stale step',
    failedBefore: 'the six switchovers lost nothing, but no epoch was recorded: `Received has value: undefined`',
  },
  {
    file: 'test/workflows/promote-lineage.test.ts',
    name: "promote: lineage refuses a standby built from another cluster's backup, naming both system identifiers; it stays in recovery",
    promise: 'right lineage',
    failedBefore: 'promoted the foreign copy: the run succeeded (`Received value: undefined` for the expected failure)',
  },
  {
    file: 'test/workflows/promote-lineage.test.ts',
    name: "promote: lineage unplanned from the archive: waits until the standby replayed the archive's newest segment, then promotes with every archived row",
    promise: 'no silent loss',
    failedBefore: 'promoted without waiting for the archive (no `check-replay` step)',
  },
  {
    file: 'test/workflows/promote-lineage.test.ts',
    name: 'promote: lineage S3 stalled for the standby during an archive promotion: not promoted early; the gate asks again with the measured loss',
    promise: 'no silent loss',
    failedBefore: 'no second decision: it promoted on the first approval (`expect(again).not.toBeNull()`, received `null`)',
  },
  {
    file: 'test/regions/standby-slots.test.ts',
    name: 'replication slots of streaming standbys provision keeps one on the source, a switchover inside the source keeps it, promotion and switchback move it, none is left behind',
    promise: 'WAL kept',
    failedBefore: 'no slot on the source: `Expected value: "dr_us_acid_sl" Received array: []`',
  },
  {
    file: 'test/regions/standby-slots.test.ts',
    name: 'replication slots of streaming standbys an unplanned promotion leaves the slot on the lost source; failback releases it there and the rewound former primary streams through one on the new primary',
    promise: 'WAL kept',
    failedBefore: 'no slot on the source: `Expected value: "dr_us_acid_sf" Received array: []`',
  },
  {
    file: 'test/regions/standby-slots.test.ts',
    name: 'replication slots of streaming standbys a standby that could not be built leaves no slot for it on the source',
    promise: 'WAL kept',
    failedBefore: 'a slot for a standby that never existed: `Expected value: not "dr_us_acid_sx"`',
  },
  {
    file: 'test/regions/reseed-guard.test.ts',
    name: 'reseed re-checks its target at the moment of deletion and keeps the old data aside a target promoted after its assessment is refused: its data intact, it still takes writes',
    promise: 'data kept',
    failedBefore: 'the reseed wiped a running primary (`Expected constructor: PreconditionFailedError`, received `Error`)',
  },
  {
    file: 'test/regions/reseed-guard.test.ts',
    name: 'reseed re-checks its target at the moment of deletion and keeps the old data aside a target holding another system than the one assessed is refused, nothing changed',
    promise: 'data kept',
    failedBefore: 'the reseed wiped another system (`Expected constructor: PreconditionFailedError`, received `Error`)',
  },
  {
    file: 'test/regions/reseed-guard.test.ts',
    name: 'reseed re-checks its target at the moment of deletion and keeps the old data aside a normal reseed keeps the old data aside until the new standby replays; retries never touch the new data',
    promise: 'data kept',
    failedBefore: 'the old data was deleted at once (no aside copy: `Received has value: undefined`)',
  },
  {
    file: 'test/kube/zalando-failback.test.ts',
    name: 'failback-reseed through the zalando driver reseed re-checks at the moment of the delete: a primary, or another system than the one assessed, is refused and nothing is deleted',
    promise: 'data kept',
    failedBefore: 'the primary was deleted and re-created (`the operator reports CreateFailed…` instead of a refusal)',
  },
];
