// drctl region-failover, approve --include and region-failover decide, as an operator runs them: the real
// region-failover runbook on this process's workers, one protected cluster whose standby streams only (so with
// eu's worker gone its loss is unknown and over any policy: it needs to be included by name).
import { DR_CLUSTER, DR_RUNBOOK, DR_SITE } from '../../workflows/contracts/search-attributes';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { deleteCluster, driverOf, roleOf } from '../helpers/clusters';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createSource } from '../helpers/standby-pair';
import { drctl, drctlChild, eventually, loggedInAs } from './drctl-process';

const NAME = 'acid-clirf';
const SOURCE = `eu/${NAME}`;
const STANDBY = `us/${NAME}`;
const RUN = 'region-failover/eu';

describe('drctl region-failover', () => {
  beforeAll(async () => {
    const src = driverOf(SOURCE);
    const dst = driverOf(STANDBY);
    await createSource(SOURCE, { members: 1 });
    for (const user of await src.driver.listSecretUsers(NAME)) await dst.driver.writeSecret(NAME, user, (await src.driver.readSecret(NAME, user))!);
    const facts = (await src.driver.describeCluster(NAME))!;
    expect((await listCompleteBackups(src.driver.cfg.s3, facts.archive.walPrefix)).length).toBeGreaterThan(0);
    await dst.driver.createStandbyCluster({
      cluster: NAME, sourceRef: SOURCE, like: { pgVersion: 15, instances: 1 }, labels: { 'dr-tier': '0', team: 'acid' }, fromHost: facts.streamingEndpoint,
    });
  }, 600_000);
  afterAll(async () => {
    await deleteCluster(STANDBY).catch(() => undefined);
    await deleteCluster(SOURCE).catch(() => undefined);
  }, 300_000);

  it('starts under region-failover/<lost site>; the gate shows the per-cluster table; decide is refused with no budget decision pending; approve --include reaches the gate; status, list and report read the run', async () => {
    await withRunbookWorkers(async (h) => {
      let follower: ReturnType<typeof drctlChild> | undefined;
      try {
        await evacuate(h, (f) => { follower = f; });
      } finally {
        follower?.kill();
        // A failed assertion must not leave the evacuation running for the next test of region-failover/eu.
        await h.client.workflow.getHandle(RUN).terminate('test over').catch(() => undefined);
        // eu never answers again in this test: the old primary's fence guard would wait for it forever.
        await h.client.workflow.getHandle(`fence-guard/${SOURCE}`).terminate('test over').catch(() => undefined);
      }
    }, { sites: ['us'] });
  }, 1_200_000);
});

async function evacuate(h: RunbookHarness, onFollower: (f: ReturnType<typeof drctlChild>) => void): Promise<void> {
  const started = await drctl(h, ['region-failover', '--lost', 'eu', '--surviving', 'us', '--clusters', NAME, '--label', 'team=acid',
    '--tier', `${NAME}=0`, '--no-backup', '--region-timeout', '2', '--approval-timeout', '600', '--max-failures', '1', '--on-budget', 'pause',
    '--no-wait', '--json']);
  expect({ code: started.code, stderr: started.stderr }).toEqual({ code: 0, stderr: '' });
  expect(started.json).toMatchObject({
    ok: true, command: 'region-failover', workflowId: RUN, runbook: 'region-failover', cluster: 'eu/*', status: 'RUNNING', started: true,
    requester: expect.stringMatching(/^unauthenticated \(nobody is logged in/),
    input: {
      lostSite: 'eu', survivingSite: 'us', selector: { clusters: [NAME], labels: { team: 'acid' } }, tiers: { clusters: { [NAME]: 0 } },
      failureBudget: { maxFailures: 1, onExceeded: 'pause' }, takeBackup: false, approvalTimeoutSeconds: 600, limits: { regionTimeoutSeconds: 2 },
    },
  });
  const handle = h.client.workflow.getHandle(RUN);
  const sa = (await handle.describe()).typedSearchAttributes;
  expect([sa.get(DR_RUNBOOK), sa.get(DR_CLUSTER), sa.get(DR_SITE)]).toEqual(['region-failover', 'eu/*', 'eu']);

  // A human follows the run: the gate with its table is announced, and the progress.
  const follower = drctlChild(['status', 'region-failover', 'eu', '--follow'], { DR_TASK_QUEUE_PREFIX: h.prefix });
  onFollower(follower);
  await eventually('the follower to announce the gate', async () => (follower.stderrSoFar().includes('waits for approval') ? true : undefined), 300_000);
  const announced = follower.stderrSoFar();
  expect(announced).toMatch(/cluster\s+standby\s+tier\s+est\. loss bytes\s+est\. loss s\s+basis\s+fence\s+within policy/);
  expect(announced).toMatch(new RegExp(`${SOURCE}\\s+${STANDBY}\\s+0\\s+\\?\\s+\\?\\s+none\\s+UNCONFIRMED\\s+NO`));
  expect(announced).toContain(`approve with --include ${NAME} --acknowledge-data-loss`);
  expect(announced).toContain(`drctl approve ${RUN} --ticket <ticket> --acknowledge-unconfirmed-fence`);
  expect(announced).toContain('approvers: 2 different people');

  const waiting = await drctl(h, ['status', RUN, '--json']);
  expect(waiting.json).toMatchObject({
    executionStatus: 'RUNNING', runbook: 'region-failover', cluster: 'eu/*',
    pendingApproval: { gate: 'region-failover', clusters: [{ cluster: SOURCE, standby: STANDBY, outcome: 'excluded-over-policy' }] },
  });
  // Nothing promoted yet; the cluster over the policy counts as left out until it is included.
  expect(waiting.json.progress).toMatch(/^progress: [a-z-]+: 0\/1 done, 0 running, 0 failed, 0 pending, 1 not promoted$/);

  // No failure budget is spent: a decision is refused with the runbook's reason (exit 1, refused).
  const early = await drctl(h, ['region-failover', 'decide', 'eu', '--continue', '--approver', 'alice', '--ticket', 'INC-7', '--json']);
  expect(early.code).toBe(1);
  expect(early.json).toMatchObject({ ok: false, command: 'region-failover decide', workflowId: RUN, error: { kind: 'refused' } });
  expect(early.json.error.message).toContain('no failure-budget decision is pending');

  const listed = await eventually('list --runbook region-failover to show the run', async () => {
    const l = await drctl(h, ['list', '--runbook', 'region-failover', '--running', '--json']);
    return l.json.runs.find((r: { workflowId: string }) => r.workflowId === RUN);
  }, 30_000);
  expect(listed).toMatchObject({ runbook: 'region-failover', cluster: 'eu/*', site: 'eu', executionStatus: 'RUNNING' });

  // --include reaches the gate's validator: naming a cluster that is not over the policy is refused there.
  const [alice, bob] = [await loggedInAs('alice'), await loggedInAs('bob')];
  const wrong = await drctl(h, ['approve', RUN, '--ticket', 'INC-7', '--include', 'acid-other',
    '--acknowledge-data-loss', '--acknowledge-unconfirmed-fence', '--json'], alice);
  expect(wrong.code).toBe(1);
  expect(wrong.json).toMatchObject({ error: { kind: 'refused' }, decision: { include: ['acid-other'], acknowledgeDataLoss: true } });
  expect(wrong.json.error.message).toContain('not over the loss policy');
  // Accepting loss and an unconfirmed fence takes two people: alice's approval is the first of two ...
  const first = await drctl(h, ['approve', RUN, '--ticket', 'INC-7', '--include', NAME, '--acknowledge-data-loss', '--acknowledge-unconfirmed-fence'], alice);
  expect(first.code).toBe(0);
  expect(first.stdout).toContain(`Approved gate "region-failover" of ${RUN} as alice (ticket INC-7)`);
  expect(first.stdout).toContain('1 more approver is needed: someone other than alice and the run\'s requester must approve the same terms ' +
    `(drctl login --user <them>; drctl approve ${RUN} --ticket INC-7 --acknowledge-data-loss --acknowledge-unconfirmed-fence --include ${NAME})`);
  expect((await drctl(h, ['status', RUN, '--json'])).json).toMatchObject({ executionStatus: 'RUNNING', pendingApproval: { signedBy: [{ subject: 'alice' }] } });
  // ... and bob's, on the same terms, completes it.
  const approved = await drctl(h, ['approve', RUN, '--ticket', 'INC-7', '--include', NAME,
    '--acknowledge-data-loss', '--acknowledge-unconfirmed-fence', '--json'], bob);
  expect(approved.code).toBe(0);
  expect(approved.json).toMatchObject({ decision: { decision: 'approved', approver: 'bob', ticket: 'INC-7', included: [NAME], acknowledgedDataLoss: true,
    approvers: [{ subject: 'alice', authenticated: true }, { subject: 'bob', authenticated: true }] } });
  expect(approved.json.decision.awaitingApprovers).toBeUndefined();

  const followed = await follower.done;
  expect(followed.code).toBe(0);
  expect(followed.stderr).toMatch(/ {2}progress: [a-z-]+: \d\/1 done, /);
  expect(followed.stdout).toMatch(new RegExp(`${SOURCE}\\s+${STANDBY}\\s+0\\s+promoted`));

  const ended = await drctl(h, ['status', RUN, '--json']);
  expect(ended.json).toMatchObject({
    executionStatus: 'COMPLETED',
    result: { lostSite: 'eu', survivingSite: 'us', outcome: 'completed', clusters: [{ cluster: SOURCE, outcome: 'promoted', workflowId: `promote/${STANDBY}` }] },
  });
  expect(await roleOf(STANDBY)).toBe('primary');
  const report = await drctl(h, ['report', RUN]);
  expect(report.code).toBe(0);
  expect(report.stdout).toContain('# region-failover of eu to us: completed');
  expect(report.stdout).toMatch(new RegExp(`\\| ${SOURCE} \\| ${STANDBY} \\| 0 \\| promoted \\|`));
  expect(report.stdout).toContain(`included over policy: ${NAME}`);
  const reportJson = await drctl(h, ['report', RUN, '--json']);
  expect(reportJson.json.report).toEqual(ended.json.result);

  // The run has ended: a budget decision is refused as such.
  const late = await drctl(h, ['region-failover', 'decide', RUN, '--stop', '--approver', 'alice', '--ticket', 'INC-7', '--json']);
  expect(late.code).toBe(1);
  expect(late.json.error).toMatchObject({ kind: 'refused' });
  expect(late.json.error.message).toContain('is not running');
}
