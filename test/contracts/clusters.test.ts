import { parseClusterRef, zalandoClusterNameProblem } from '../../workflows/contracts/clusters';
import { BadInputError } from '../../workflows/contracts/errors';
import { formatLsn, lsnDiff, parseLsn, walSegmentEndLsn } from '../../workflows/contracts/lsn';
import { siteTaskQueue, controlTaskQueue } from '../../workflows/contracts/task-queues';

describe('cluster references', () => {
  it('parses <site>/<cluster>', () => {
    expect(parseClusterRef('eu/acid-demo')).toEqual({ site: 'eu', cluster: 'acid-demo' });
  });

  it.each([
    ['', /missing/],
    ['acid-demo', /"<site>\/<cluster>"/],
    ['eu/acid/demo', /"<site>\/<cluster>"/],
    ['EU/acid-demo', /site "EU"/],
    ['eu/Acid-demo', /lower-case/],
    ['eu/acid-', /lower-case/],
    ['eu/demo', /team id and a dash/],
    [`eu/acid-${'a'.repeat(49)}`, /at most 53/],
  ])('refuses %j with a message saying what to fix', (text, message) => {
    expect(() => parseClusterRef(text)).toThrow(BadInputError);
    expect(() => parseClusterRef(text)).toThrow(message);
  });

  it('accepts a 53-character name and refuses 54', () => {
    expect(zalandoClusterNameProblem(`acid-${'a'.repeat(48)}`)).toBeUndefined();
    expect(zalandoClusterNameProblem(`acid-${'a'.repeat(49)}`)).toMatch(/54 characters/);
  });
});

describe('LSNs', () => {
  it('round-trips and orders LSNs above 4 GiB', () => {
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848');
    expect(lsnDiff('1/0', '0/FFFFFFFF')).toBe(1);
    expect(lsnDiff('0/3000060', '0/3000000')).toBe(0x60);
  });

  it('refuses text that is not an LSN', () => {
    expect(() => parseLsn('3000060')).toThrow(/not a Postgres LSN/);
  });

  it('knows where a WAL segment ends', () => {
    expect(walSegmentEndLsn('000000010000000000000003')).toEqual({ timeline: 1, endLsn: '0/4000000' });
    expect(walSegmentEndLsn('0000000200000001000000FF')).toEqual({ timeline: 2, endLsn: '2/0' });
  });
});

describe('task queues', () => {
  it('derives site queues from the control queue, prefix included', () => {
    expect(siteTaskQueue('eu')).toBe('dr-site-eu');
    expect(siteTaskQueue('us', controlTaskQueue('staging-'))).toBe('staging-dr-site-us');
  });
});
