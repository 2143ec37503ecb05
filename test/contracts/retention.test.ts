// The retention rules (workflows/contracts/retention.ts) on backup lists a sandbox cannot easily produce: a higher,
// abandoned timeline in the same prefix (its backups are "newer" in WAL-G's order, but the cluster lives on a lower
// timeline), and permanent backups. The real-WAL-G behaviour is in test/activities/retain-backups.test.ts.
import { parseRetentionInput, planRetention, type RetainedBackup } from '../../workflows/contracts/retention';

const backup = (timeline: number, segment: number, permanent = false): RetainedBackup => {
  const seg = segment.toString(16).toUpperCase().padStart(8, '0');
  return {
    name: `base_${timeline.toString(16).toUpperCase().padStart(8, '0')}00000000${seg}`, timeline,
    startLsn: `0/${(segment * 0x1000000).toString(16).toUpperCase()}`, finishLsn: `0/${(segment * 0x1000000 + 0x100).toString(16).toUpperCase()}`,
    finishTime: null, permanent,
  };
};
const names = (bs: RetainedBackup[]) => bs.map((b) => b.name);

describe('planRetention', () => {
  it('keeps the newest N across timelines, timeline first, then LSN; deletes before the oldest kept', () => {
    const [a, b, c, d] = [backup(1, 4), backup(1, 8), backup(2, 9), backup(2, 12)];
    const p = planRetention([c, a, d, b], 3, 2);
    expect(names(p.kept)).toEqual(names([d, c, b]));
    expect(names(p.deleted)).toEqual(names([a]));
    expect(p).toMatchObject({ keepAsked: 3, keepApplied: 3, raisedBecause: null, deleteBefore: b.name });
  });

  it('never deletes the newest backup of the current timeline: keep is raised to reach it, and says why', () => {
    // Timeline 3 was an abandoned promotion into this prefix; the cluster lives on timeline 2.
    const [a, b, c, d] = [backup(1, 4), backup(2, 9), backup(3, 10), backup(3, 11)];
    const p = planRetention([a, b, c, d], 1, 2);
    expect(names(p.kept)).toEqual(names([d, c, b]));
    expect(names(p.deleted)).toEqual(names([a]));
    expect(p.keepApplied).toBe(3);
    expect(p.raisedBecause).toContain(`${b.name}, the newest backup of timeline 2, is never deleted`);
    expect(p.deleteBefore).toBe(b.name);
  });

  it('nothing beyond N: nothing to delete; permanent backups are kept and never listed for deletion', () => {
    expect(planRetention([backup(1, 4), backup(1, 8)], 2, 1)).toMatchObject({ deleted: [], deleteBefore: null });
    const [old, perm, newest] = [backup(1, 2), backup(1, 4, true), backup(1, 8)];
    const p = planRetention([old, perm, newest], 1, 1);
    expect(names(p.kept)).toEqual(names([newest, perm]));
    expect(names(p.deleted)).toEqual(names([old]));
  });

  it('keep below 1, or not a whole number, is bad input', () => {
    for (const keep of [0, -3, 2.5, '2', null]) {
      expect(() => parseRetentionInput({ cluster: 'eu/acid-demo', keep })).toThrow(/keep must be a whole number of full backups >= 1/);
    }
    expect(() => parseRetentionInput({ cluster: 'acid-demo', keep: 2 })).toThrow(/<site>\/<cluster>/);
    expect(parseRetentionInput({ cluster: 'eu/acid-demo', keep: 2 })).toEqual({ cluster: 'eu/acid-demo', keep: 2, dryRun: false });
  });
});
