// failback-reseed through the zalando driver, on real divergence, against a REAL kube-apiserver (harness as in
// zalando-runbooks.test.ts: the stand-in operator and kubelet back pods with real Patroni members). eu/acid-zfb
// is cut off from its standby us/acid-zfb, writes rows us never gets, and is lost; us is promoted (unplanned).
// Case 1: failback rewinds eu into a standby of us (Patroni's rewind, seen in pods/log) and switches back.
// Case 2: the same loss again, with the WAL a rewind needs gone: auto sees pg_rewind fail (pods/log) and falls back
// to the operator's failback, delete and recreate (a new uid and archive prefix; Secrets unchanged).
// Then the driver's reseed, at the moment of the delete, refuses a primary and a cluster of another system than the
// one assessed, deleting nothing.
// Private ports 31600-31699 and a temp folder.
import { startRunbook } from '../../scripts/lib/runbook-client';
import { createDriverFactory } from '../../activities/sites';
import { loadSites } from '../../activities/sites/sites-file';
import { PreconditionFailedError } from '../../workflows/contracts/errors';
import { lastForkOf, partitionStandby, removeWalSegmentHolding, writeDivergentRows } from '../../scripts/lib/sandbox/faults';
import { patchDynamicConfig } from '../../activities/sites/local/dcs-config';
import { listKeys } from '../../activities/sites/local/s3-server';
import { SOURCE_ANNOTATION, type PostgresqlObject, type ZalandoSiteDriver } from '../../activities/sites/zalando-driver';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type FailbackInput, type FailbackResult, type PromoteResult } from '../../workflows/contracts/runbooks';
import { approveIfAskedAgain, approveWhenAsked } from '../helpers/approvals';
import { sql, waitFor } from '../helpers/private-regions';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { createProtectedPair, startZalandoHarness, type ZalandoHarness } from './zalando-harness';

let z: ZalandoHarness;
let euBacking: ZalandoHarness['euBacking'];
let usBacking: ZalandoHarness['usBacking'];
let operator: ZalandoHarness['operator'];
let sitesFile: string;
const NAME = 'acid-zfb';
const EU = `eu/${NAME}`;
const US = `us/${NAME}`;
const DEAD_PORT = 31608;
const timings: Record<string, number> = {};

const admin = (method: string, path: string, body?: unknown) => z.admin(method, path, body);
const postgresql = async (ns: string) => (await admin('GET', `/apis/acid.zalan.do/v1/namespaces/${ns}/postgresqls/${NAME}`)).body as PostgresqlObject;
const secrets = async (ns: string) => ((await admin('GET', `/api/v1/namespaces/${ns}/secrets?labelSelector=cluster-name%3D${NAME}`)).body as {
  items: Array<{ metadata: { name: string; uid: string }; data: Record<string, string> }>;
}).items.filter((s) => s.metadata.name.endsWith('.credentials.postgresql.acid.zalan.do'))
  .map((s) => ({ name: s.metadata.name, uid: s.metadata.uid, data: s.data })).sort((a, b) => a.name.localeCompare(b.name));
const roleOf = async (backing: typeof euBacking) => (await backing.describeCluster(NAME))?.leaderRole;
const ids = async (backing: typeof euBacking) => new Set((await sql<{ id: string }>(backing, NAME, 'SELECT id FROM public.writes')).map((r) => Number(r.id)));

function run(h: RunbookHarness, workflowType: string, runbook: string, cluster: string, input: unknown) {
  return startRunbook(h.client, { workflowType, runbook, cluster, taskQueue: h.taskQueue, input });
}

/**
 * A partition cuts us off eu (its standby_cluster re-pointed at a dead port through Patroni, the operator told not
 * to put it back), eu writes rows us never gets and is lost, us is promoted (unplanned, eu's worker gone too); us
 * takes writes; then eu's region comes back fenced (paused in its DCS, as fence-guard leaves it) and the guard ends.
 */
async function divergeLoseAndPromote(opts: { firstId: number }) {
  operator.spec.skipStandbyPatch = true;
  const euPort = (await euBacking.describeCluster(NAME))!.streamingEndpoint.port;
  await partitionStandby(usBacking, NAME, euPort, DEAD_PORT);
  const divergent = await writeDivergentRows(euBacking, NAME);
  await euBacking.region.stopCluster(NAME);
  return withRunbookWorkers(async (h) => {
    const promote = await run(h, 'promote', RUNBOOK_NAMES.promote, US, { cluster: US, mode: 'unplanned', limits: { regionTimeoutSeconds: 5, catchUpTimeoutSeconds: 5 } });
    await approveWhenAsked(promote, 'alice');
    // Cut off, us may not replay all the divergent WAL eu archived: then promote asks again with the loss measured.
    const again = await approveIfAskedAgain(promote, 'alice');
    if (again) expect(again.requires.acknowledgeDataLoss).toBe(true);
    const promoted = (await promote.result()) as PromoteResult;
    expect(promoted.fence).toBe('UNCONFIRMED');
    operator.spec.skipStandbyPatch = false;
    for (let i = 0; i < 20; i++) await sql(usBacking, NAME, 'INSERT INTO public.writes (id) VALUES ($1)', [opts.firstId + i]);
    await patchDynamicConfig(euBacking.region.getCluster(NAME)!, euBacking.cfg.etcd.clientPort, { pause: true });
    await euBacking.region.startCluster(NAME);
    await euPatroniAnswersPaused();
    await h.addSiteWorker('eu');
    const guard = (await h.client.workflow.getHandle(promoted.fenceGuard!).result()) as { fenced: boolean; detail: string };
    expect(guard.fenced).toBe(true);
    expect(guard.detail).toMatch(/^Patroni paused, Postgres stopped/);
    return { divergent, promoted };
  }, { sitesFile, sites: ['us'] });
}

/**
 * eu's region is back once its Patroni answers through its pods (paused: Postgres stays down), and only then its
 * worker, so the guard fences through Patroni. Patroni 4.1 takes longer than 3.0 from its start to its REST API
 * (heavier imports, and it first asks whether a member of its name already runs): a guard that came first found
 * pods with no Patroni and fenced by scaling to 0 (zalando-fence.test.ts covers that), leaving no pod to fail back.
 */
async function euPatroniAnswersPaused(): Promise<void> {
  const eu = createDriverFactory(loadSites(sitesFile))('eu') as ZalandoSiteDriver;
  await waitFor(`${EU}'s Patroni answering, paused`, 120_000, async () => ((await eu.patroniView(await eu.pods(NAME)))?.config?.pause === true ? true : null));
}

function failback(h: RunbookHarness, input: FailbackInput) {
  return run(h, 'failbackReseed', RUNBOOK_NAMES.failbackReseed, EU, input);
}

beforeAll(async () => {
  const t0 = Date.now();
  z = await startZalandoHarness('zalando-fb', 31600, { [NAME]: { members: 1 } });
  ({ euBacking, usBacking, operator, sitesFile } = z);

  // eu/acid-zfb with rows and a proven backup; us/acid-zfb its standby (archive and streaming).
  await createProtectedPair(z, NAME, 'CREATE TABLE public.writes (id bigint primary key); INSERT INTO public.writes SELECT generate_series(1, 200)');
  timings.setupMs = Date.now() - t0;
}, 600_000);

afterAll(async () => {
  await z?.stop(timings);
});

describe('failback-reseed through the zalando driver', () => {
  it('rewinds the diverged former primary into a standby (Patroni\'s rewind, read from pods/log) and switches back', async () => {
    const uidBefore = (await postgresql('eu')).metadata.uid;
    const { divergent } = await divergeLoseAndPromote({ firstId: 100_001 });
    const onUs = await ids(usBacking);
    await withRunbookWorkers(async (h) => {
      const handle = await failback(h, { primary: US, formerPrimary: EU, strategy: 'auto', switchBack: true });
      await approveWhenAsked(handle, 'alice');
      await approveWhenAsked(h.client.workflow.getHandle(`promote/${EU}`), 'alice');
      const result = (await handle.result()) as FailbackResult;
      expect(result).toMatchObject({ strategy: 'rewind', rewound: true, alreadyRejoined: false });
      expect(result.switchBack).toMatchObject({ fence: 'CONFIRMED', measuredRpoBytes: 0 });
      timings.rewindRejoinMs = result.phaseDurationsMs.rejoin;
      // The divergent WAL is in S3, manifest included, before anything was rewound.
      const keys = await listKeys(euBacking.cfg.s3, euBacking.cfg.s3.bucket, `quarantine/${NAME}/`);
      expect(keys).toContain(result.quarantine!.manifest.replace(`s3://${euBacking.cfg.s3.bucket}/`, ''));
      expect(result.quarantine!.objects).toBeGreaterThan(0);
      const journal = await handle.query(getJournalQuery);
      expect(journal.find((e) => e.step === 'rewind')?.facts).toMatchObject({ rewound: true });
      // The switchback's fencing epoch is on both postgresql objects (annotation), newer than the failback's own.
      const epochOf = async (ns: string) => Number((await postgresql(ns)).metadata.annotations?.['standby-runbooks.dev/fencing-epoch']);
      const failbackEpoch = journal.find((e) => e.step === 'fencing-epoch')?.facts?.epoch as number;
      expect(result.switchBack!.fencingEpoch).toBeGreaterThan(failbackEpoch);
      expect(await epochOf('eu')).toBe(result.switchBack!.fencingEpoch);
      expect(await epochOf('us')).toBe(result.switchBack!.fencingEpoch);
      process.stdout.write(`[zalando failback rewind] fork ${result.forkLsn}, divergent ${result.divergentBytes} bytes in ${result.quarantine!.objects} objects, ` +
        `phases ${JSON.stringify(result.phaseDurationsMs)}, switchback RTO ${result.switchBack!.rtoMs} ms\n`);
    }, { sitesFile });
    // The original topology, same incarnation, every row us had, none of the divergent ones.
    expect(await roleOf(euBacking)).toBe('primary');
    expect(await roleOf(usBacking)).toBe('standby_leader');
    expect((await postgresql('eu')).metadata.uid).toBe(uidBefore);
    const final = await ids(euBacking);
    expect([...onUs].filter((id) => !final.has(id))).toEqual([]);
    expect(divergent.filter((id) => final.has(id))).toEqual([]);
  });

  it('auto: pg_rewind fails (the WAL back to the checkpoint is gone; seen in pods/log), so it reseeds by delete and recreate: a new uid and archive prefix, the same Secrets', async () => {
    const before = await postgresql('eu');
    const secretsBefore = await secrets('eu');
    const oldPrefix = (await euBacking.describeCluster(NAME))!.archive.walPrefix;
    const { divergent, promoted } = await divergeLoseAndPromote({ firstId: 200_001 });
    const onUs = await ids(usBacking);
    // Recycled: eu's WAL of its timeline up to the fork point is gone from every member (eu is fenced: stopped).
    const fork = await lastForkOf(usBacking, NAME, promoted.timelineAfter);
    expect(removeWalSegmentHolding(euBacking, NAME, fork.timeline, fork.lsn, { andEarlier: true }).length).toBeGreaterThan(0);
    await withRunbookWorkers(async (h) => {
      const handle = await failback(h, { primary: US, formerPrimary: EU, strategy: 'auto', switchBack: false });
      const gate = await approveWhenAsked(handle, 'bob');
      expect(gate.plan).toMatch(/should pg_rewind fail, WIPE and reseed it/);
      const result = (await handle.result()) as FailbackResult;
      expect(result).toMatchObject({ strategy: 'reseed', rewound: false });
      expect(result.choiceReason).toMatch(/pg_rewind failed, so reseeded as approved/);
      const journal = await handle.query(getJournalQuery);
      const steps = journal.map((e) => `${e.step}:${e.outcome}`);
      expect(steps).toEqual(expect.arrayContaining(['quarantine:done', 'rewind:failed', 'reseed:done']));
      expect(steps.indexOf('quarantine:done')).toBeLessThan(steps.indexOf('reseed:done'));
      const reseed = journal.find((e) => e.step === 'reseed')!;
      const newPrefix = (await euBacking.describeCluster(NAME))!.archive.walPrefix;
      expect(reseed.facts).toMatchObject({ walPrefix: newPrefix, previousWalPrefix: oldPrefix });
      timings.reseedRejoinMs = result.phaseDurationsMs.rejoin;
      process.stdout.write(`[zalando failback reseed] divergent ${result.divergentBytes} bytes kept in ${result.quarantine!.objects} objects, ` +
        `archive ${oldPrefix} -> ${newPrefix}, phases ${JSON.stringify(result.phaseDurationsMs)}\n`);
    }, { sitesFile });
    const after = await postgresql('eu');
    expect(after.metadata.uid).not.toBe(before.metadata.uid);
    expect(after.spec.standby?.s3_wal_path).toBe((await usBacking.describeCluster(NAME))!.archive.walPrefix);
    expect(await secrets('eu')).toEqual(secretsBefore);
    expect(await roleOf(euBacking)).toBe('standby_leader');
    const final = await ids(euBacking);
    expect([...onUs].filter((id) => !final.has(id))).toEqual([]);
    expect(divergent.filter((id) => final.has(id))).toEqual([]);
  });

  it('reseed re-checks at the moment of the delete: a primary, or another system than the one assessed, is refused and nothing is deleted', async () => {
    const drivers = createDriverFactory(loadSites(sitesFile));
    const us = (await drivers('us').describeCluster(NAME))!;
    const eu = (await drivers('eu').describeCluster(NAME))!;
    const pgBefore = { eu: (await postgresql('eu')).metadata.uid, us: (await postgresql('us')).metadata.uid };
    const usSystem = (await sql<{ s: string }>(usBacking, NAME, 'select system_identifier::text as s from pg_control_system()'))[0].s;
    expect(await roleOf(usBacking)).toBe('primary');
    // Neither object records a source any more, as an original primary's never did: an object the runbooks created
    // as a standby of the asked source is a finished reseed, not one to delete, and is answered before any check.
    for (const ns of ['eu', 'us']) {
      const r = await admin('PATCH', `/apis/acid.zalan.do/v1/namespaces/${ns}/postgresqls/${NAME}`, { metadata: { annotations: { [SOURCE_ANNOTATION]: null } } });
      expect(r.status).toBe(200);
    }
    // us, the primary since case 2, asked to become a standby of eu (as a stale run would): refused.
    const asPrimary = await drivers('us').reseedAsStandby(NAME, {
      sourceRef: EU, fromArchive: { archive: eu.archive, backupName: 'LATEST' }, fromHost: eu.streamingEndpoint, assessedSystemIdentifier: usSystem,
    }).then((r) => new Error(`reseed went ahead on a primary: ${JSON.stringify(r)}`), (e: Error) => e);
    process.stdout.write(`[zalando reseed re-check] primary: ${asPrimary.message}
`);
    expect(asPrimary).toBeInstanceOf(PreconditionFailedError);
    expect(asPrimary.message).toMatch(/runs as a primary/);
    // eu, a standby of us, with an assessment of another system: refused, naming both.
    const otherSystem = '7000000000000000001';
    const asOther = await drivers('eu').reseedAsStandby(NAME, {
      sourceRef: US, fromArchive: { archive: us.archive, backupName: 'LATEST' }, fromHost: us.streamingEndpoint, assessedSystemIdentifier: otherSystem,
    }).then((r) => new Error(`reseed went ahead on another system: ${JSON.stringify(r)}`), (e: Error) => e);
    process.stdout.write(`[zalando reseed re-check] other system: ${asOther.message}
`);
    expect(asOther).toBeInstanceOf(PreconditionFailedError);
    expect(asOther.message).toContain(otherSystem);
    expect(asOther.message).toContain(usSystem);
    // Nothing deleted: the same objects, us still takes writes, eu still follows it.
    expect({ eu: (await postgresql('eu')).metadata.uid, us: (await postgresql('us')).metadata.uid }).toEqual(pgBefore);
    await sql(usBacking, NAME, 'INSERT INTO public.writes (id) VALUES (900001)');
    await waitFor('900001 on eu', 60_000, async () => ((await ids(euBacking)).has(900_001) ? true : null));
    expect(await roleOf(euBacking)).toBe('standby_leader');
  });
});
