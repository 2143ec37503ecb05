// Names Patroni's REST API gives roles and states, across the versions the drivers meet (Debian's 3.0.2, current 4.x).
// Patroni 4 renamed the primary's role "master" to "primary" (GET /patroni, Spilo's `spilo-role` pod label), and its
// /cluster shows a replica's or standby leader's replication state ("streaming", "in archive recovery") where 3.0.2
// said "running". GET /patroni still says "running" for any member whose Postgres answers.

/** States in /cluster of a member whose Postgres runs. */
const RUNNING_MEMBER_STATES = new Set(['running', 'streaming', 'in archive recovery']);

export const memberStateRunning = (state: string | undefined): boolean => RUNNING_MEMBER_STATES.has(state ?? '');

/** GET /patroni roles of a primary: "master" before Patroni 4, "primary" since. */
export const PRIMARY_NODE_ROLES: readonly string[] = ['master', 'primary'];

export const isPrimaryNodeRole = (role: string | undefined): boolean => PRIMARY_NODE_ROLES.includes(role ?? '');

/** `spilo-role` label of the primary's pod: "master" on Spilo with Patroni 3, "primary" with Patroni 4. */
export const isSpiloPrimaryLabel = (label: string | undefined): boolean => label === 'master' || label === 'primary';

/** The major version in GET /patroni's `patroni.version` ("4.1.5" -> 4); null when it does not say. */
export function patroniMajorOf(version: string | undefined): number | null {
  const m = /^(\d+)\./.exec(version ?? '');
  return m ? Number(m[1]) : null;
}

/** The `spilo-role` Spilo gives the primary's pod under a Patroni of this version. */
export const spiloPrimaryLabelFor = (version: string | undefined): 'master' | 'primary' =>
  (patroniMajorOf(version) ?? 0) >= 4 ? 'primary' : 'master';

/**
 * Patroni 4 has `patronictl promote-cluster`: a PATCH of `standby_cluster` to null sent to the leader's REST API,
 * then a wait for the leader to run as primary. 3.0.2 has no such command; the same PATCH goes to any member.
 */
export const hasPromoteCluster = (version: string | undefined): boolean => (patroniMajorOf(version) ?? 0) >= 4;

/** The promotion path as the journal and the run result name it. */
export function promotePathFor(version: string | undefined): string {
  if (!version) return 'Patroni version unknown: PATCH standby_cluster=null';
  return hasPromoteCluster(version) ? `Patroni ${version}: promote-cluster semantics` : `Patroni ${version}: PATCH standby_cluster=null`;
}

/**
 * Patroni 4 has `patronictl demote-cluster`: `standby_cluster` written on a RUNNING primary cluster demotes it
 * cleanly (fast shutdown, shutdown checkpoint archived when it archives, restarted as standby leader). 3.0.2 would
 * demote with an immediate shutdown, so a switchover fences it first instead.
 */
export const hasDemoteCluster = (version: string | undefined): boolean => (patroniMajorOf(version) ?? 0) >= 4;

/** How a planned switchover stopped the old primary's writes, as the journal and the run result name it. */
export function demotePathFor(version: string | undefined, native: boolean): string {
  const v = version ? `Patroni ${version}` : 'Patroni version unknown';
  return native
    ? `${v}: demote-cluster (standby_cluster on the running primary, clean shutdown)`
    : `${v}: fence (pause and fast stop), standby_cluster after the promotion`;
}
