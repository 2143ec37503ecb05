// The bad-input suite (issue 8), drctl's part: usage errors exit 2 with a message that says what to fix, and
// nothing is contacted or changed. TEMPORAL_ADDRESS points at a listener that only counts connections: any
// drctl that tried to reach Temporal (to start, decide or even look) would show up there.
import { createServer, type Server, type Socket } from 'node:net';
import { drctlChild } from '../cli/drctl-process';
import { testLayout } from '../helpers/test-env';
import { expectNothingChanged } from './world-snapshot';

// In the suite's own port range (unused by the regions and S3), so concurrent suites on one machine stay apart.
const TRAP_PORT = testLayout().portBase + 2790;

const ROWS: Array<[string, string[], RegExp]> = [
  ['promote without --mode', ['promote', 'us/acid-demo'], /required option '--mode <mode>' not specified/],
  ['promote of an upper-case cluster name', ['promote', 'us/Acid-Demo', '--mode', 'planned'],
    /cluster "us\/Acid-Demo": cluster name "Acid-Demo" must be lower-case letters, digits and '-'/],
  ['promote with an unknown mode', ['promote', 'us/acid-demo', '--mode', 'sideways'], /argument 'sideways' is invalid\. Allowed choices are planned, unplanned/],
  ['promote with a loss limit in words', ['promote', 'us/acid-demo', '--mode', 'unplanned', '--max-loss-bytes', 'lots'], /"lots" is not a number >= 0/],
  ['provision-standby within one site', ['provision-standby', '--source', 'eu/acid-demo', '--target', 'eu/acid-copy'],
    /--source and --target are both at site "eu": a standby belongs in another region/],
  ['force-backup with an LSN that is not one', ['force-backup', 'eu/acid-demo', '--not-before-lsn', 'latest'],
    /"latest" is not a Postgres LSN \(expected e\.g\. "0\/3000060"\)/],
  ['failback onto itself', ['failback', '--primary', 'us/acid-demo', '--former-primary', 'us/acid-demo'],
    /--primary and --former-primary are both "us\/acid-demo": name two different clusters/],
  ['region-failover with lost = surviving', ['region-failover', '--lost', 'eu', '--surviving', 'eu'],
    /--lost and --surviving are both "eu": the standbys are at another site/],
  ['drill run at the cluster\'s own site', ['drill', 'run', 'eu/acid-demo', '--dr-site', 'eu'],
    /--dr-site "eu" is the site of eu\/acid-demo itself: name the site that would take over/],
  ['drill schedule with a cron of one field', ['drill', 'schedule', 'eu/acid-demo', '--dr-site', 'us', '--cron', 'nightly'],
    /cron "nightly": has 1 fields; give 5 \(minute hour day-of-month month day-of-week\)/],
  ['approve with a typed --approver', ['approve', 'promote/us/acid-demo', '--approver', 'alice', '--ticket', 'INC-1'],
    /^--approver is gone: a typed name proves nothing\. Log in \(drctl login --user <you>\), then drctl approve promote\/us\/acid-demo --ticket <ticket>$/],
  ['approve a cluster instead of a run', ['approve', 'us/acid-demo', '--ticket', 'INC-1'],
    /run "us\/acid-demo": runbook "us" is not one of provision-standby, force-backup, promote/],
  ['a misspelt command', ['promot', 'us/acid-demo'], /unknown command 'promot'\n\(Did you mean promote\?\)/],
];

describe('bad input to drctl', () => {
  let trap: Server;
  const contacts: Socket[] = [];

  beforeAll(async () => {
    trap = createServer((socket) => {
      contacts.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => trap.once('error', reject).listen(TRAP_PORT, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => trap.close(resolve));
  });

  it.each(ROWS)('%s: exit 2, nothing contacted or changed', async (_name, args, message) => {
    const run = await expectNothingChanged(() => drctlChild([...args, '--json'], { TEMPORAL_ADDRESS: `127.0.0.1:${TRAP_PORT}` }).done);
    expect(run.code).toBe(2);
    expect(run.json).toMatchObject({ ok: false, error: { kind: 'usage' } });
    expect(run.json.error.message).toMatch(message);
    expect(contacts).toHaveLength(0);
  });
});
