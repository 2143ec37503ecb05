// The bad-input suite (issue 8): every runbook, given input that can never work, is refused once, typed and
// non-retryable, with a message that says what to fix, and nothing in the world changed (Patroni config and
// roles, marker rows, cluster files, secret files and their mtimes, S3 objects). One standby pair of 1-member
// clusters and one set of workers serve every row, in order.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { listCompleteBackups } from '../../activities/s3/backup-catalogue';
import { GENERIC_ROUTE } from '../../scripts/lib/incident-bridge/server';
import { approveUpdate, getPendingApprovalQuery } from '../../workflows/contracts/approvals';
import { pendingGate } from '../helpers/approvals';
import { deleteCluster, driverOf } from '../helpers/clusters';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createSource } from '../helpers/standby-pair';
import { testLayout } from '../helpers/test-env';
import { startBridgeProcess, type BridgeProcess } from '../bridge/bridge-process';
import { typedNamesSitesFile } from '../bridge/typed-names-sites';
import { drHeaders, newKey, postTo, registerSecretsForAudit, type SignOptions, type TestKey } from '../bridge/signing';
import { refusalOf } from './refusal';
import { expectNothingChanged, snapshotWorld } from './world-snapshot';

const SOURCE = 'eu/acid-bi';
const STANDBY = 'us/acid-bi';
/** A primary at us that is nobody's standby and does not archive: the wrong cluster for most runbooks. */
const OTHER = 'us/acid-bx';
const DIR = join(testLayout().dir, 'bad-input');
// In the suite's own port range (unused by the regions and S3), so concurrent suites on one machine stay apart.
const BRIDGE_PORT = testLayout().portBase + 2787;

/** The OTHER cluster's secret file of `user`, which two rows spoil for the length of the row. */
const otherSecret = (user: string) => join(driverOf(OTHER).driver.cfg.secretStore.dir, 'acid-bx', `${user}.json`);

/** Moves the replication user's secret out of the store; gives it back after the row. */
function withoutStandbySecret(): () => void {
  const away = join(DIR, 'standby.json.away');
  renameSync(otherSecret('standby'), away);
  return () => renameSync(away, otherSecret('standby'));
}

/** Replaces the app user's secret with a half-written file; restores the bytes and the mtime after the row. */
function withCorruptAppSecret(): () => void {
  const f = otherSecret('app');
  const [bytes, st] = [readFileSync(f), statSync(f)];
  writeFileSync(f, '{"username": "app", "password": ');
  return () => {
    writeFileSync(f, bytes);
    utimesSync(f, st.atime, st.mtime);
  };
}

interface Row {
  name: string;
  workflowType: 'provisionStandby' | 'promote' | 'forceBackup' | 'failbackReseed' | 'regionFailover' | 'drill' | 'standbyLag';
  input: unknown;
  type: string;
  message: RegExp;
  /** Breaks something first (outside the compared window) and returns how to mend it. */
  arrange?: () => () => void;
  workflowId?: string;
}
const row = (name: string, workflowType: Row['workflowType'], input: unknown, type: string, message: RegExp, more: Partial<Row> = {}): Row =>
  ({ name, workflowType, input, type, message, ...more });

const ROWS: Row[] = [
  // provision-standby
  row('provision-standby: the UI form sent a string instead of an object', 'provisionStandby', 'eu/acid-bi',
    'BadInputError', /input must be a JSON object: \{"source": "eu\/acid-demo", "target": "us\/acid-demo", "method": "archive"\}/),
  row('provision-standby: the UI form sent null', 'provisionStandby', null, 'BadInputError', /input must be a JSON object/),
  row('provision-standby: a list instead of an object', 'provisionStandby', [SOURCE, 'us/acid-bi2'], 'BadInputError',
    /input must be a JSON object with the fields source, target, method, limits, not a list/),
  row('provision-standby: a misspelt field ("metod")', 'provisionStandby', { source: SOURCE, target: 'us/acid-bi2', metod: 'stream' },
    'BadInputError', /input has unknown field "metod": remove it or fix the spelling; known fields are source, target, method, limits/),
  row('provision-standby: target is a number', 'provisionStandby', { source: SOURCE, target: 42, method: 'archive' },
    'BadInputError', /target must be a string "<site>\/<cluster>", e.g. "eu\/acid-demo", not a number/),
  row('provision-standby: a path as target ("us/../acid-bi2")', 'provisionStandby', { source: SOURCE, target: 'us/../acid-bi2', method: 'archive' },
    'BadInputError', /target "us\/\.\.\/acid-bi2" must be "<site>\/<cluster>", e.g. "eu\/acid-demo"/),
  row('provision-standby: an upper-case site', 'provisionStandby', { source: SOURCE, target: 'US/acid-bi2', method: 'archive' },
    'BadInputError', /site "US" must be lower-case letters, digits and '-'/),
  row('provision-standby: a site the sites file does not know (refused by an activity)', 'provisionStandby',
    { source: SOURCE, target: 'mars/acid-bi2', method: 'archive' }, 'BadInputError', /site "mars" is not in the sites file .* \(known: eu, us\)/),
  row('provision-standby: the target is a primary', 'provisionStandby', { source: SOURCE, target: OTHER, method: 'archive' },
    'PreconditionFailedError', /target us\/acid-bx already exists and is a primary cluster: choose another target name, or remove it first/),
  row('provision-standby: the target is a standby of another source', 'provisionStandby', { source: 'eu/acid-demo', target: STANDBY, method: 'archive' },
    'PreconditionFailedError', /target us\/acid-bi already exists and is a standby of another source: choose another target name/),
  row('provision-standby: the source is a standby', 'provisionStandby', { source: STANDBY, target: 'eu/acid-bi-back', method: 'stream' },
    'PreconditionFailedError', /source us\/acid-bi is itself a standby cluster: provision from its primary cluster instead/),
  row('provision-standby: the source has no replication secret', 'provisionStandby', { source: OTHER, target: 'eu/acid-bx', method: 'stream' },
    'PreconditionFailedError', /us\/acid-bx has no "standby" credentials in its secret store at site us: .*restore them at the source first/,
    { arrange: withoutStandbySecret }),
  row('provision-standby: a source secret is not valid JSON', 'provisionStandby', { source: OTHER, target: 'eu/acid-bx', method: 'stream' },
    'BadInputError', /secret acid-bx\/app is not valid JSON: rewrite .*app\.json as \{"username": "\.\.\.", "password": "\.\.\."\}/,
    { arrange: withCorruptAppSecret }),

  // promote
  row('promote: the UI form sent a number', 'promote', 42, 'BadInputError', /input must be a JSON object: \{"cluster": "us\/acid-demo", "mode": "planned"\}/),
  row('promote: a cluster with no standby there', 'promote', { cluster: 'us/acid-nostandby', mode: 'unplanned' },
    'ClusterNotFoundError', /us\/acid-nostandby does not exist at site us: name an existing standby cluster \(provision-standby builds one\)/),
  row('promote: an unknown mode', 'promote', { cluster: STANDBY, mode: 'sideways' },
    'BadInputError', /mode "sideways" must be "planned" \(source reachable, no loss\) or "unplanned"/),
  row('promote: a loss policy in words', 'promote', { cluster: STANDBY, mode: 'unplanned', dataLossPolicy: { maxBytes: 'lots' } },
    'BadInputError', /dataLossPolicy\.maxBytes must be a number >= 0/),
  row('promote: a misspelt field ("dataLosPolicy")', 'promote', { cluster: STANDBY, mode: 'unplanned', dataLosPolicy: { maxBytes: 1e9 } },
    'BadInputError', /input has unknown field "dataLosPolicy": remove it or fix the spelling/),
  row('promote: no time for a human', 'promote', { cluster: STANDBY, mode: 'unplanned', approvalTimeoutSeconds: 0 },
    'BadInputError', /approvalTimeoutSeconds must be > 0: a promotion always waits for a human/),
  row('promote: a source the standby does not replay from', 'promote', { cluster: STANDBY, mode: 'planned', source: 'eu/acid-demo' },
    'BadInputError', /source eu\/acid-demo is not the cluster us\/acid-bi replays from \(eu\/acid-bi\): leave "source" out, or name eu\/acid-bi/),
  // Issue 16's forgery: a caller typing the approval a region-failover would hand down, to approve their own promotion.
  row('promote: a forged delegated approval in the input', 'promote', {
    cluster: STANDBY, mode: 'planned',
    preApproval: { decision: 'approved', approver: 'mallory', ticket: 'NONE', delegatedBy: 'region-failover/eu' },
  }, 'BadInputError', /preApproval is not accepted in the input: anyone who may start a run could approve their own promotion/),
  row('promote: a hand-typed preApproval', 'promote', { cluster: STANDBY, mode: 'unplanned', preApproval: 'yes' },
    'BadInputError', /preApproval is not accepted in the input/),

  // force-backup
  row('force-backup: a standby', 'forceBackup', { cluster: STANDBY }, 'PreconditionFailedError',
    /us\/acid-bi is a standby cluster .*: force-backup needs a primary; promote it first, or back up its source/,
    { workflowId: `force-backup/${STANDBY}` }),
  row('force-backup: a cluster that does not archive', 'forceBackup', { cluster: OTHER }, 'PreconditionFailedError',
    /us\/acid-bx does not archive to S3 \(no WAL-G prefix\): configure its archive first/),
  row('force-backup: an LSN that is not one', 'forceBackup', { cluster: SOURCE, notBeforeLsn: 'latest' },
    'BadInputError', /"latest" is not a Postgres LSN \(expected e\.g\. "0\/3000060"\)/),
  row('force-backup: a misspelt limit ("backupTimout")', 'forceBackup', { cluster: SOURCE, limits: { backupTimout: 60 } },
    'BadInputError', /limits has unknown field "backupTimout": remove it or fix the spelling; known fields are backupTimeoutSeconds, archiveBrokenAfterSeconds, archivePollSeconds/),
  row('force-backup: an LSN the leader has not reached', 'forceBackup', { cluster: SOURCE, notBeforeLsn: 'FF/0' },
    'BadInputError', /notBeforeLsn FF\/0 is ahead of eu\/acid-bi's current LSN .*: give an LSN the cluster has reached/),

  // failback-reseed
  row('failback: the "primary" is still a standby', 'failbackReseed', { primary: STANDBY, formerPrimary: SOURCE, strategy: 'auto' },
    'PreconditionFailedError', /us\/acid-bi is not a writable primary \(leader role standby_leader, still a standby cluster\): promote it first/),
  row('failback: onto a cluster that is not the old primary', 'failbackReseed', { primary: SOURCE, formerPrimary: OTHER, strategy: 'auto' },
    'PreconditionFailedError', /us\/acid-bx is not a former primary of eu\/acid-bi: its system identifier \d+ differs from \d+.*name the cluster eu\/acid-bi was promoted from as "formerPrimary"/),
  row('failback: an unknown strategy', 'failbackReseed', { primary: SOURCE, formerPrimary: STANDBY, strategy: 'merge' },
    'BadInputError', /strategy "merge" is not one of auto, rewind, reseed/),
  row('failback: a replay timeout in words', 'failbackReseed', { primary: SOURCE, formerPrimary: OTHER, strategy: 'auto', limits: { replayTimeoutSeconds: 'soon' } },
    'BadInputError', /limits\.replayTimeoutSeconds must be a positive number of seconds/),
  row('failback: switchBack as a string', 'failbackReseed', { primary: SOURCE, formerPrimary: OTHER, strategy: 'auto', switchBack: 'no' },
    'BadInputError', /switchBack must be true or false/),

  // region-failover
  row('region-failover: lostSite = survivingSite', 'regionFailover', { lostSite: 'eu', survivingSite: 'eu' },
    'BadInputError', /lostSite and survivingSite are both "eu": name the site that is lost and the one that takes over/),
  row('region-failover: a site the sites file does not know', 'regionFailover', { lostSite: 'mars', survivingSite: 'us' },
    'BadInputError', /site "mars" is not in the sites file .* \(known: eu, us\)/),
  row('region-failover: selector.clusters is not a list', 'regionFailover', { lostSite: 'eu', survivingSite: 'us', selector: { clusters: 5 } },
    'BadInputError', /selector\.clusters must be a list of cluster names at the lost site, e\.g\. \["acid-demo"\]/),
  row('region-failover: no promotions at once', 'regionFailover', { lostSite: 'eu', survivingSite: 'us', concurrency: 0 },
    'BadInputError', /concurrency must be a whole number >= 1/),

  // drill
  row('drill: drSite is the cluster\'s own site', 'drill', { cluster: SOURCE, drSite: 'eu' },
    'BadInputError', /drSite "eu" is the site of eu\/acid-bi itself: name the site that would take over/),
  row('drill: the cluster is a standby', 'drill', { cluster: STANDBY, drSite: 'eu' },
    'PreconditionFailedError', /us\/acid-bi is not a primary \(leader role: standby_leader\): drill the cluster that takes the writes/),
  row('drill: the throwaway name is a real cluster', 'drill', { cluster: SOURCE, drSite: 'us', throwawayName: 'acid-bx' },
    'PreconditionFailedError', /us\/acid-bx already exists and is not a throwaway of drill\/eu\/acid-bi: the drill never touches it; give another "throwawayName"/),
  row('drill: verifyTables as one string', 'drill', { cluster: SOURCE, drSite: 'us', verifyTables: 'public.writes' },
    'BadInputError', /verifyTables must be a list of "<schema>\.<table>" names in lower case, e\.g\. \["public\.orders"\]/),

  // standby-lag
  row('standby-lag: one cluster as a string', 'standbyLag', { clusters: STANDBY }, 'BadInputError', /clusters must be a list of "<site>\/<cluster>"/),
  row('standby-lag: a cluster without its site', 'standbyLag', { clusters: ['acid-bi'] }, 'BadInputError', /clusters\[\] "acid-bi" must be "<site>\/<cluster>"/),
  row('standby-lag: a threshold in words', 'standbyLag', { clusters: [STANDBY], threshold: { maxBytes: 'a lot' } },
    'BadInputError', /threshold\.maxBytes must be a number >= 0/),
  row('standby-lag: a site the sites file does not know (refused by an activity)', 'standbyLag', { clusters: ['mars/acid-bi'] },
    'BadInputError', /site "mars" is not in the sites file/),
];

describe('bad input to the runbooks', () => {
  let h: RunbookHarness;
  let release: () => void;
  let harnessDone: Promise<void>;

  beforeAll(async () => {
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    const other = driverOf(OTHER);
    await Promise.all([
      createSource(SOURCE, { members: 1 }),
      other.driver.region.createCluster({ name: other.cluster, pgVersion: 15, archive: false, users: ['app'], members: 1 }),
    ]);
    // The standby streams (a planned promotion needs that) with the archive as fallback.
    const src = driverOf(SOURCE);
    const dst = driverOf(STANDBY);
    for (const user of await src.driver.listSecretUsers(src.cluster)) await dst.driver.writeSecret(dst.cluster, user, (await src.driver.readSecret(src.cluster, user))!);
    const facts = (await src.driver.describeCluster(src.cluster))!;
    const backups = await listCompleteBackups(src.driver.cfg.s3, facts.archive.walPrefix);
    await dst.driver.createStandbyCluster({
      cluster: dst.cluster, sourceRef: SOURCE, like: { pgVersion: 15, instances: 1 }, fromHost: facts.streamingEndpoint,
      fromArchive: { archive: facts.archive, backupName: backups[backups.length - 1].name },
    });
    const ready = new Promise<RunbookHarness>((resolveReady) => {
      harnessDone = withRunbookWorkers((harness) => new Promise<void>((r) => {
        release = r;
        resolveReady(harness);
      }));
    });
    h = await ready;
  }, 300_000);

  afterAll(async () => {
    release?.();
    await harnessDone;
    for (const ref of [STANDBY, SOURCE, OTHER]) await deleteCluster(ref).catch(() => undefined);
  }, 120_000);

  it.each(ROWS.map((r, i) => [r.name, r, i] as const))('%s', async (_name, r, i) => {
    const mend = r.arrange?.();
    try {
      const refusal = await expectNothingChanged(() => refusalOf(h, r.workflowType, r.workflowId ?? `bad-input/${h.prefix}${i}`, r.input));
      expect(refusal.type).toBe(r.type);
      expect(refusal.message).toMatch(r.message);
    } finally {
      mend?.();
    }
  });

  describe('decisions for a gate that is not open, and bridge requests it must not trust', () => {
    // The bridge runs as deployed (its own process), each caller with its own key: "oncall" may do anything,
    // "observer" only reject at eu, "chatty" anything but 2 requests an hour.
    const oncall = newKey('oncall-tool');
    const observer = newKey('observer-tool');
    const chatty = newKey('chatty-tool');
    const configPath = join(DIR, 'bridge.json');
    const keyEnv = { DR_TEST_BI_KEY_ONCALL: oncall.secret, DR_TEST_BI_KEY_OBSERVER: observer.secret, DR_TEST_BI_KEY_CHATTY: chatty.secret };
    let bridge: BridgeProcess | undefined;
    // The bridge decides with its allow-list's typed names: its workers' sites file still accepts them.
    let typed: RunbookHarness;
    let releaseTyped: (() => void) | undefined;
    let typedDone: Promise<void> | undefined;
    const startBridge = async () => { bridge = await startBridgeProcess(configPath, BRIDGE_PORT, typed.prefix, keyEnv, join(DIR, 'bridge.log')); };
    const send = (body: unknown, key: TestKey = oncall, opts?: SignOptions) => {
      const text = JSON.stringify(body);
      return postTo(bridge!.baseUrl, GENERIC_ROUTE, text, drHeaders(text, key, opts));
    };

    beforeAll(async () => {
      registerSecretsForAudit('bad-input-bridge', [oncall.secret, observer.secret, chatty.secret]);
      const all = { action: ['start', 'approve', 'reject'], runbooks: ['*'], sites: ['*'] };
      writeFileSync(join(DIR, 'allow.json'), JSON.stringify({
        identities: {
          'tool:oncall': { approver: 'oncall@example.com', may: [all] },
          'tool:observer': { approver: 'observer@example.com', may: [{ action: 'reject', runbooks: ['*'], sites: ['eu'] }] },
          'tool:chatty': { approver: 'chatty@example.com', may: [all] },
        },
      }));
      writeFileSync(configPath, JSON.stringify({
        listen: { host: '127.0.0.1', port: BRIDGE_PORT }, allowListFile: 'allow.json', auditFile: 'audit.jsonl', replayStoreDir: 'replay',
        windowSeconds: 900,
        callers: {
          [oncall.keyId]: { identity: 'tool:oncall', secretEnv: 'DR_TEST_BI_KEY_ONCALL' },
          [observer.keyId]: { identity: 'tool:observer', secretEnv: 'DR_TEST_BI_KEY_OBSERVER' },
          [chatty.keyId]: { identity: 'tool:chatty', secretEnv: 'DR_TEST_BI_KEY_CHATTY', rateLimit: { max: 2, windowSeconds: 3600 } },
        },
      }));
      typed = await new Promise<RunbookHarness>((resolveReady) => {
        typedDone = withRunbookWorkers((harness) => new Promise<void>((r) => {
          releaseTyped = r;
          resolveReady(harness);
        }), { sitesFile: typedNamesSitesFile() });
      });
      await startBridge();
    }, 120_000);
    afterAll(async () => {
      await bridge?.stop();
      releaseTyped?.();
      await typedDone;
    }, 120_000);

    // One planned promotion, started through the bridge, waits at its gate (planned asks before it fences, so it has
    // changed nothing); every wrong or untrusted request is refused while the world stays as it was before the
    // promotion started; then the bridge rejects it, restarts, and the captured requests are sent again.
    it('wrong gate, ended run, string input, another caller\'s key, another identity, stale, reused delivery id, over the rate limit, replays after a restart: refused, nothing changed', async () => {
      const before = await snapshotWorld();
      const unchanged = async () => expect(await snapshotWorld()).toEqual(before);
      const workflowId = `promote/${STANDBY}`;
      const startText = JSON.stringify({ action: 'start', runbook: 'promote', ticket: 'INC-8', input: { cluster: STANDBY, mode: 'planned', approvalTimeoutSeconds: 600, takeBackup: false } });
      const startHeaders = drHeaders(startText, oncall);
      const started = await postTo(bridge!.baseUrl, GENERIC_ROUTE, startText, startHeaders);
      expect(started).toMatchObject({ status: 200, body: { ok: true, workflowId } });
      const handle = typed.client.workflow.getHandle(workflowId);
      expect((await pendingGate(handle)).gate).toBe('promote');
      const stillOpen = async () => {
        expect(await handle.query(getPendingApprovalQuery)).toMatchObject({ gate: 'promote' });
        await unchanged();
      };
      const updateRefusal = async (p: Promise<unknown>) => {
        const err = await p.then(() => { throw new Error('the decision was accepted but should have been refused'); }, (e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
        expect((err as WorkflowUpdateFailedError).cause).toBeInstanceOf(ApplicationFailure);
        return (err as WorkflowUpdateFailedError).cause!.message;
      };

      // Update for the failback gate sent to the promotion.
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ gate: 'failback', approver: 'alice', ticket: 'INC-8' }] })))
        .toMatch(/gate "failback" is not open \(the open gate is "promote"\)/);
      await stillOpen();
      // Update without a ticket.
      expect(await updateRefusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', ticket: '' }] }))).toMatch(/ticket is missing/);
      await stillOpen();
      // Bridge: the same wrong gate.
      const approval = { action: 'approve', workflowId, ticket: 'INC-8' };
      let r = await send({ ...approval, gate: 'failback' });
      expect(r).toMatchObject({ status: 409, body: { ok: false, message: expect.stringMatching(/gate "failback" is not open \(the open gate is "promote"\)/) } });
      await stillOpen();
      // Bridge: a run that has ended (the refused force-backup of the standby above).
      r = await send({ ...approval, workflowId: `force-backup/${STANDBY}` });
      expect(r).toMatchObject({ status: 409, body: { ok: false, message: `force-backup/${STANDBY} is not running (FAILED): no approval gate is open` } });
      await stillOpen();
      // Bridge: a start whose input is a string, as a form field pasted without its object.
      r = await send({ action: 'start', runbook: 'promote', ticket: 'INC-8', input: STANDBY });
      expect(r.status).toBe(422);
      expect(r.body.message).toMatch(/input is missing: the runbook's input as a JSON object/);
      await stillOpen();

      // Signed with another caller's key under oncall's key id.
      r = await send(approval, oncall, { signWith: observer.secret });
      expect(r).toMatchObject({ status: 401, body: { message: expect.stringMatching(/^bad signature: X-DR-Signature is not the HMAC-SHA256 of .* with the key "oncall-tool"$/) } });
      await stillOpen();
      // Observer's own key, with a body naming oncall's identity: the key decides who asks.
      r = await send({ ...approval, identity: 'tool:oncall' }, observer);
      expect(r).toMatchObject({ status: 403, body: { message: 'the body names identity "tool:oncall", but key "observer-tool" proves "tool:observer": the identity comes from the key; leave "identity" out of the body' } });
      await stillOpen();
      r = await send(approval, observer);
      expect(r).toMatchObject({ status: 403, body: { message: 'identity "tool:observer" may not approve promote runs at site "us"' } });
      await stillOpen();
      // A body re-signed (with the right key) under a timestamp outside the window.
      r = await send(approval, oncall, { ts: Math.floor(Date.now() / 1000) - 1000 });
      expect(r).toMatchObject({ status: 401, body: { message: expect.stringMatching(/^stale request: X-DR-Timestamp is 100\d s old \(window 900 s\)/) } });
      await stillOpen();
      // A new body, freshly signed, under the delivery id the start already used.
      r = await send(approval, oncall, { deliveryId: startHeaders['x-dr-delivery-id'] });
      expect(r).toMatchObject({ status: 401, body: { message: expect.stringMatching(/^replayed request: delivery .* of key "oncall-tool" was already received/) } });
      await stillOpen();
      // Chatty spends its 2 requests (each refused: wrong gate); the third is over its limit, oncall's is not.
      for (let i = 0; i < 2; i++) expect((await send({ ...approval, gate: 'failback' }, chatty)).status).toBe(409);
      r = await send(approval, chatty);
      expect(r).toMatchObject({ status: 429, body: { message: expect.stringMatching(/^rate limit: key "chatty-tool" \(tool:chatty\) may send 2 requests in 3600 s; try again in \d+ s$/) } });
      expect(Number(r.retryAfter)).toBeGreaterThan(0);
      await stillOpen();
      expect((await send({ ...approval, gate: 'failback' })).status).toBe(409);

      const rejectText = JSON.stringify({ action: 'reject', workflowId, ticket: 'INC-8', comment: 'bad-input suite' });
      const rejectHeaders = drHeaders(rejectText, oncall);
      r = await postTo(bridge!.baseUrl, GENERIC_ROUTE, rejectText, rejectHeaders);
      expect(r).toMatchObject({ status: 200, body: { record: { decision: 'rejected', approver: 'oncall@example.com' } } });
      const err = await handle.result().then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(((err as WorkflowFailedError).cause as ApplicationFailure).type).toBe('ApprovalRejectedError');
      await unchanged();
      const { runId } = await handle.describe();

      // A restart forgets nothing: the captured start and reject, sent again byte for byte, start and decide nothing.
      await bridge!.stop();
      await startBridge();
      for (const [text, headers] of [[startText, startHeaders], [rejectText, rejectHeaders]] as const) {
        r = await postTo(bridge!.baseUrl, GENERIC_ROUTE, text, headers);
        expect(r).toMatchObject({ status: 401, body: { message: `replayed request: delivery ${headers['x-dr-delivery-id']} of key "oncall-tool" was already received; give every request its own X-DR-Delivery-Id` } });
      }
      expect(await handle.describe()).toMatchObject({ runId, status: { name: 'FAILED' } });
      await unchanged();
    });
  });
});
