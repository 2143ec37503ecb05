// What the suite expects of the Patroni it runs (DR_PATRONI, default 4; see activities/sites/local/tools.ts).
/**
 * The promotion path a run reports on the Patroni this suite runs (DR_PATRONI, default 4): 4.1's promote-cluster
 * semantics, or 3.0.2's plain PATCH.
 */
export function expectedPromotePath(): RegExp {
  return process.env.DR_PATRONI === '3'
    ? /^Patroni 3\.0\.2: PATCH standby_cluster=null$/
    : /^Patroni 4\.1\.\d+: promote-cluster semantics$/;
}

/**
 * How a planned switchover (streaming) stops the old primary on this suite's Patroni: 4.1's demote-cluster on the
 * running primary, or 3.0.2's fence (pause and fast stop).
 */
export function expectedDemotePath(): RegExp {
  return process.env.DR_PATRONI === '3'
    ? /^Patroni 3\.0\.2: fence \(pause and fast stop\)/
    : /^Patroni 4\.1\.\d+: demote-cluster \(standby_cluster on the running primary/;
}

export const patroniNativeDemote = (): boolean => process.env.DR_PATRONI !== '3';
