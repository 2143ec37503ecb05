// standby-lag's measurement of one standby, at the standby's site: its replay position (pg_last_wal_replay_lsn,
// pg_last_xact_replay_timestamp, whether replay is paused) against the newest WAL segment in its source's archive
// (read from S3 with the source site's settings, so it works with the source's region down). Reads only; the same
// call again measures again.
import type { Client as PgClient } from 'pg';
import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import { readPosition } from '../postgres/markers';
import { lastArchivedWal } from '../s3/backup-catalogue';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { lossAgainstArchive } from '../../workflows/contracts/loss';
import type { StandbyLagMeasurement } from '../../workflows/contracts/standby-lag';

async function replayState(client: PgClient) {
  const position = await readPosition(client);
  const r = await client.query<{ state: string | null }>(
    'SELECT CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS state',
  );
  return { position, pauseState: r.rows[0].state };
}

export function createStandbyLag(deps: ActivityDeps) {
  return async function siteStandbyLag(input: { ref: string }): Promise<StandbyLagMeasurement> {
    const { site, cluster } = parseClusterRef(input.ref);
    const driver = deps.driverFor(site);
    const facts = await driver.describeCluster(cluster);
    const none: StandbyLagMeasurement = {
      standby: input.ref, source: facts?.standbySource?.sourceRef ?? null, skip: null, problem: null,
      streams: !!facts?.standbySource?.host, labels: facts?.labels ?? {}, replayedLsn: null, lastReplayedCommitAt: null,
      replayPauseState: null, archivedSegment: null, archiveEndLsn: null, archivedAt: null, bytes: null, seconds: null, measuredAt: null,
    };
    if (!facts) return { ...none, skip: 'not-a-standby', problem: `${input.ref} does not exist` };
    const sb = facts.standbySource;
    if (!sb) return { ...none, skip: 'not-a-standby', problem: `${input.ref} is not a standby (leader role ${facts.leaderRole})` };
    if (!sb.walPrefix) return { ...none, skip: 'not-archive-fed' };
    if (!sb.sourceRef) return { ...none, problem: `${input.ref} replays ${sb.walPrefix} but records no source cluster, so its archive's site is unknown` };
    if (facts.leaderRole !== 'standby_leader') {
      return { ...none, problem: `no standby leader answers in ${input.ref} (leader role ${facts.leaderRole})` };
    }
    const { position, pauseState } = await driver.withLeaderSql(cluster, replayState);
    const sourceSite = parseClusterRef(sb.sourceRef, 'recorded source').site;
    const archived = await lastArchivedWal(siteConfig(deps, sourceSite).s3, sb.walPrefix);
    const measured = {
      ...none, replayedLsn: position.lsn, lastReplayedCommitAt: position.lastReplayedCommitAt, replayPauseState: pauseState,
      measuredAt: position.at,
    };
    if (!archived) return { ...measured, problem: `${sb.sourceRef}'s archive ${sb.walPrefix} holds no WAL segment yet` };
    // The same arithmetic as promote's loss estimate against the archive: what this standby would lose now.
    const loss = lossAgainstArchive(position, archived, { maxBytes: 0, maxSeconds: 0 });
    return {
      ...measured, archivedSegment: archived.segment, archiveEndLsn: archived.endLsn, archivedAt: archived.archivedAt,
      bytes: loss.bytes, seconds: loss.seconds,
    };
  };
}
