// What "broken archiving" and "over the lag threshold" mean, as sequences of looks: the definitions force-backup and
// standby-lag act on (their runs against real parts are in test/workflows/).
import { judgeArchiving, walFileName, walSegmentOf, type ArchiverStatus, type ArchiveWatch } from '../../workflows/contracts/archiving';
import { judgeStandbyLag, parseStandbyLagInput, type StandbyLagMeasurement } from '../../workflows/contracts/standby-lag';
import { parseLsn } from '../../workflows/contracts/lsn';

const t = (s: number) => new Date(Date.UTC(2026, 11, 6, 4, 0, 0) + s * 1000).toISOString();
const look = (at: number, over: Partial<ArchiverStatus> = {}): ArchiverStatus => ({
  member: 'the leader of eu/acid-x', archiveMode: 'on', archivedCount: 10, lastArchivedWal: '000000010000000000000004', lastArchivedAt: t(0),
  failedCount: 0, lastFailedWal: null, lastFailedAt: null, currentWal: '000000010000000000000005', currentLsn: '0/5000100', at: t(at), ...over,
});
// 000000010000000000000005 is complete (the server writes ...06) and fails to archive.
const failing = (at: number, lastFailed: number, n = 3) => look(at, {
  failedCount: n, lastFailedWal: '000000010000000000000005', lastFailedAt: t(lastFailed), currentWal: '000000010000000000000006', currentLsn: '0/6000100',
});

function run(looks: ArchiverStatus[], n: number) {
  let watch: ArchiveWatch | null = null;
  return looks.map((s) => {
    const j = judgeArchiving(watch, s, n);
    watch = j.watch;
    return j.verdict;
  });
}

describe('judgeArchiving', () => {
  it('failing becomes broken once it has lasted the limit with nothing archived, named by the WAL file and the first failure seen', () => {
    const v = run([failing(5, 4), failing(40, 38, 6), failing(70, 68, 9)], 60);
    expect(v.map((x) => x.state)).toEqual(['failing', 'failing', 'broken']);
    expect(v[2]).toMatchObject({ wal: '000000010000000000000005', since: t(4), segmentsWaiting: 1, lagBytes: 0x1000100 });
    expect(v[2].message).toMatch(new RegExp(`^archiving is broken: 000000010000000000000005 since ${t(4).replace(/\./g, '\\.')} \\(failing for 66s with no WAL archived since`));
  });

  it('a failure that recovers resets the streak: a later failure starts a new one', () => {
    const recovered = look(50, { lastArchivedWal: '000000010000000000000005', lastArchivedAt: t(49), failedCount: 6, lastFailedWal: '000000010000000000000005', lastFailedAt: t(30) });
    const v = run([failing(5, 4), recovered, failing(100, 95, 9), failing(140, 138, 12)], 60);
    expect(v.map((x) => x.state)).toEqual(['failing', 'ok', 'failing', 'failing']);
    expect(v[3].since).toBe(t(95));
  });

  it('a backlog that does not move, with no failure reported, is stalled, then broken; any progress ends it', () => {
    const stuck = (at: number) => look(at, { currentWal: '000000010000000000000009', currentLsn: '0/9000000' });
    const moved = look(90, { lastArchivedWal: '000000010000000000000005', currentWal: '000000010000000000000009', currentLsn: '0/9000000' });
    const v = run([stuck(10), stuck(50), stuck(80), moved], 60);
    expect(v.map((x) => x.state)).toEqual(['stalled', 'stalled', 'broken', 'ok']);
    expect(v[2]).toMatchObject({ wal: '000000010000000000000005', since: t(10), segmentsWaiting: 4 });
    expect(v[2].message).toMatch(/^archiving is broken: 000000010000000000000005 since .* no failure reported: the archive_command hangs/);
  });

  it('no backlog and no failure is ok, also with nothing archived since the statistics began; archive_mode off is broken at once', () => {
    expect(run([look(5), look(500)], 60).map((x) => x.state)).toEqual(['ok', 'ok']);
    const reset = (at: number) => look(at, { lastArchivedWal: null, lastArchivedAt: null, currentWal: '000000010000000000000020', currentLsn: '0/20000100' });
    expect(run([reset(5), reset(500)], 60).map((x) => x.state)).toEqual(['ok', 'ok']);
    expect(run([look(5, { archiveMode: 'off' })], 60)[0]).toMatchObject({ state: 'broken', message: expect.stringMatching(/^archiving is broken: archive_mode is off/) });
  });

  it('reads segment numbers from segment, .partial and .backup names, none from .history; names the file of an LSN', () => {
    expect(walSegmentOf('00000002000000010000000A.partial')).toEqual({ timeline: 2, segno: 256n + 10n });
    expect(walSegmentOf('000000010000000000000002.00000028.backup')).toEqual({ timeline: 1, segno: 2n });
    expect(walSegmentOf('00000002.history')).toBeNull();
    expect(walFileName(2, parseLsn('1/A000100'))).toBe('00000002000000010000000A');
    expect(walFileName(1, parseLsn('0/7000000') - 1n)).toBe('000000010000000000000006');
  });
});

describe('judgeStandbyLag', () => {
  const m = (over: Partial<StandbyLagMeasurement> = {}): StandbyLagMeasurement => ({
    standby: 'us/acid-x', source: 'eu/acid-x', skip: null, problem: null, streams: false, labels: {}, replayedLsn: '0/4000000',
    lastReplayedCommitAt: t(0), replayPauseState: 'not paused', archivedSegment: '000000010000000000000006', archiveEndLsn: '0/7000000',
    archivedAt: t(30), bytes: 3 * 16 * 1024 * 1024, seconds: 30, measuredAt: t(31), ...over,
  });
  const policy = parseStandbyLagInput({}).threshold;

  it('within the 64 MiB / 300 s policy; over it by bytes or by seconds; labels override it per standby, a bad label is ignored and said', () => {
    expect(judgeStandbyLag(m(), policy)).toMatchObject({ status: 'ok', threshold: { maxBytes: 64 * 1024 * 1024, maxSeconds: 300, from: 'policy' } });
    expect(judgeStandbyLag(m({ seconds: 301 }), policy).status).toBe('over');
    const labelled = judgeStandbyLag(m({ labels: { 'dr-lag-max-bytes': String(16 * 1024 * 1024), 'dr-lag-max-seconds': 'soon' } }), policy);
    expect(labelled).toMatchObject({ status: 'over', threshold: { maxBytes: 16 * 1024 * 1024, maxSeconds: 300, from: 'labels' } });
    expect(labelled.reason).toMatch(/over its threshold of 16777216 bytes \/ 300 s \(labels\) \(ignored labels: dr-lag-max-seconds=soon\)$/);
  });

  it('not measurable is unknown (it pages); promoted and stream-only clusters are not this check\'s', () => {
    expect(judgeStandbyLag(m({ bytes: null, problem: 'no standby leader answers in us/acid-x' }), policy)).toMatchObject({ status: 'unknown' });
    expect(judgeStandbyLag(m({ skip: 'not-a-standby' }), policy).status).toBe('not-a-standby');
    expect(judgeStandbyLag(m({ skip: 'not-archive-fed' }), policy).status).toBe('not-archive-fed');
  });
});
