// A planned switchover (promote, mode planned) through the zalando driver, against a REAL kube-apiserver (harness as
// in zalando-runbooks.test.ts: the stand-in operator and kubelet back pods with real Patroni members), with a writer
// that follows the primary. On Patroni 4.1 the old primary eu/acid-zsw is demoted while it runs (demote-cluster:
// spec.standby recorded, standby_cluster in its Patroni), us/acid-zsw replays its shutdown checkpoint and is
// promoted, and eu follows it with no pg_rewind; a second demotion call changes nothing; then the undo (a rejected
// switchover) on us. On Patroni 3.0.2 (DR_PATRONI=3) the driver declines and the switchover fences, as before.
// Private ports 31500-31599 and a temp folder.
import { startRunbook } from '../../scripts/lib/runbook-client';
import { startWriter } from '../../scripts/lib/writer';
import { createDriverFactory } from '../../activities/sites';
import { loadSites } from '../../activities/sites/sites-file';
import { patroniLogSince } from '../../activities/sites/local/patroni-log';
import { readDynamicConfig } from '../../activities/sites/local/dcs-config';
import type { DemoteRequest, SiteDriver } from '../../activities/sites/site-driver';
import { SOURCE_ANNOTATION, type PostgresqlObject } from '../../activities/sites/zalando-driver';
import { DEMOTED_AT_ANNOTATION } from '../../activities/sites/zalando/failback';
import { SOURCE_BEFORE_DEMOTION_ANNOTATION } from '../../activities/sites/zalando/native-demote';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type PromoteResult } from '../../workflows/contracts/runbooks';
import { approveWhenAsked } from '../helpers/approvals';
import { expectedDemotePath, patroniNativeDemote } from '../helpers/patroni-version';
import { sql, waitFor } from '../helpers/private-regions';
import { withRunbookWorkers } from '../helpers/runbook-workers';
import { createProtectedPair, startZalandoHarness, type ZalandoHarness } from './zalando-harness';

let z: ZalandoHarness;
const NAME = 'acid-zsw';
const EU = `eu/${NAME}`;
const US = `us/${NAME}`;
const timings: Record<string, number> = {};

const postgresql = async (ns: string) => (await z.admin('GET', `/apis/acid.zalan.do/v1/namespaces/${ns}/postgresqls/${NAME}`)).body as PostgresqlObject;
const roleOf = async (backing: ZalandoHarness['euBacking']) => (await backing.describeCluster(NAME))?.leaderRole;
/** standby_cluster in the Patroni of eu's backing cluster, read from Patroni itself (or its DCS). */
const euStandbySection = async () => (await readDynamicConfig(z.euBacking.region.getCluster(NAME)!, z.euBacking.cfg.etcd.clientPort))?.config.standby_cluster;
const ids = async (backing: ZalandoHarness['euBacking']) => new Set((await sql<{ id: string }>(backing, NAME, 'SELECT id FROM public.writes')).map((r) => Number(r.id)));
/** pg_rewind or a reinitialisation in Patroni's own log of any member backing eu's pods since `since`. */
const rewindLines = (since: Date) => z.euBacking.region.getCluster(NAME)!.members
  .flatMap((m) => patroniLogSince(z.euBacking.region.memberPaths(NAME, m.name).logFile, since))
  .filter((l) => /running pg_rewind|reinitializ/i.test(l));
/** What the switchover asked of eu, read back from eu's object: a standby of us by streaming and from us's archive. */
async function demoteRequestOf(drivers: (site: string) => SiteDriver): Promise<DemoteRequest> {
  const standby = (await postgresql('eu')).spec.standby!;
  const us = (await drivers('us').describeCluster(NAME))!;
  return {
    sourceRef: US, fromHost: { host: standby.standby_host!, port: Number(standby.standby_port) }, fromArchive: { archive: us.archive },
    ...(standby.standby_primary_slot_name ? { slotName: standby.standby_primary_slot_name } : {}),
  };
}

beforeAll(async () => {
  const t0 = Date.now();
  z = await startZalandoHarness('zalando-sw', 31500, { [NAME]: { members: 1 } });
  await createProtectedPair(z, NAME, 'CREATE TABLE public.writes (id bigint primary key)');
  timings.setupMs = Date.now() - t0;
}, 600_000);

afterAll(async () => {
  await z?.stop(timings);
});

test('planned switchover: the running primary is demoted by its own Patroni (4.1), no acknowledged write lost, no pg_rewind, a second call changes nothing, undoable', async () => {
  const since = new Date();
  const writer = await startWriter([{ driver: z.euBacking, cluster: NAME }, { driver: z.usBacking, cluster: NAME }]);
  await waitFor('the writer writing on eu', 60_000, async () => (writer.acknowledged.length >= 20 ? true : null));
  const result = await withRunbookWorkers(async (h) => {
    const handle = await startRunbook(h.client, {
      workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: US, taskQueue: h.taskQueue,
      input: { cluster: US, mode: 'planned', takeBackup: false, approvalTimeoutSeconds: 600 },
    });
    await approveWhenAsked(handle, 'alice', 'CHG-7');
    const r = (await handle.result()) as PromoteResult;
    const journal = await handle.query(getJournalQuery);
    const fenced = journal.find((e) => e.step === 'fence-old-primary')!;
    const rejoined = journal.find((e) => e.step === 'rejoin-old-primary')!;
    process.stdout.write(`[zalando switchover] ${fenced.message}\n[zalando switchover] ${rejoined.message}\n`);
    expect(fenced.facts).toMatchObject({ fence: 'CONFIRMED', native: patroniNativeDemote(), demotePath: r.demotePath });
    // Demoted before the promotion, it already followed us when the rejoin looked; fenced (3.0.2), it was rewound-free too.
    expect(rejoined).toMatchObject({ outcome: patroniNativeDemote() ? 'already' : 'done' });
    expect(rejoined.facts ?? {}).toMatchObject(patroniNativeDemote() ? { follow: 'stream', rewound: false } : {});
    return r;
  }, { sitesFile: z.sitesFile });
  // A few writes on the promoted side, through the same client, then stop.
  const acked = writer.acknowledged.length;
  await waitFor('the writer writing on us', 60_000, async () => (writer.acknowledged.length >= acked + 20 ? true : null));
  await writer.stop();
  timings.switchoverRtoMs = result.rtoMs!;

  expect(result).toMatchObject({ alreadyPromoted: false, fence: 'CONFIRMED', measuredRpoBytes: 0 });
  expect(result.demotePath).toMatch(expectedDemotePath());
  const onUs = await ids(z.usBacking);
  expect(writer.acknowledged.filter((id) => !onUs.has(id))).toEqual([]);
  process.stdout.write(`[zalando switchover] ${result.demotePath}; acknowledged ${writer.acknowledged.length}, lost 0, ` +
    `${writer.failures} failed attempts, longest gap ${writer.longestGapMs()} ms, RTO ${result.rtoMs} ms, phases ${JSON.stringify(result.phaseDurationsMs)}\n`);
  expect(await roleOf(z.usBacking)).toBe('primary');
  expect(await roleOf(z.euBacking)).toBe('standby_leader');
  // eu follows the new primary (a row written on us after the switch arrives) with no pg_rewind in its Patroni log.
  await sql(z.usBacking, NAME, 'INSERT INTO public.writes (id) VALUES (900001)');
  await waitFor('900001 on eu', 60_000, async () => ((await ids(z.euBacking)).has(900_001) ? true : null));
  expect(rewindLines(since)).toEqual([]);

  const drivers = createDriverFactory(loadSites(z.sitesFile));
  const eu = drivers('eu');
  const euBefore = await postgresql('eu');
  const configBefore = await euStandbySection();
  const again = await eu.demoteRunningPrimary!(NAME, await demoteRequestOf(drivers));
  process.stdout.write(`[zalando switchover] second demotion call: ${JSON.stringify(again)}\n`);
  if (!patroniNativeDemote()) {
    // 3.0.2: declined, nothing written.
    expect(again).toMatchObject({ native: false, patroniVersion: '3.0.2' });
    return;
  }
  expect(again).toMatchObject({ native: true, changed: false, confirmed: true, method: 'demoted-to-standby' });
  const euAfter = await postgresql('eu');
  expect({ annotations: euAfter.metadata.annotations, spec: euAfter.spec }).toEqual({ annotations: euBefore.metadata.annotations, spec: euBefore.spec });
  expect(await euStandbySection()).toEqual(configBefore);
  expect(await roleOf(z.euBacking)).toBe('standby_leader');

  // The undo of a switchover's demotion (rejected, or no catch-up): us demoted toward eu, then promoted back.
  const us = drivers('us');
  const usAnnotations = (await postgresql('us')).metadata.annotations ?? {};
  const euFacts = (await eu.describeCluster(NAME))!;
  const demoted = await us.demoteRunningPrimary!(NAME, { sourceRef: EU, fromHost: euFacts.streamingEndpoint, fromArchive: { archive: euFacts.archive } });
  expect(demoted).toMatchObject({ native: true, changed: true, confirmed: true, cleanShutdown: true });
  await expect(sql(z.usBacking, NAME, 'INSERT INTO public.writes (id) VALUES (900002)')).rejects.toThrow(/read-only/);
  expect((await postgresql('us')).metadata.annotations).toMatchObject({ [SOURCE_ANNOTATION]: EU, [SOURCE_BEFORE_DEMOTION_ANNOTATION]: usAnnotations[SOURCE_ANNOTATION] ?? '' });
  expect((await us.undoNativeDemotion!(NAME)).changed).toBe(true);
  expect(await roleOf(z.usBacking)).toBe('primary');
  await sql(z.usBacking, NAME, 'INSERT INTO public.writes (id) VALUES (900003)');
  const restored = await postgresql('us');
  expect(restored.spec.standby ?? null).toBeNull();
  expect(restored.metadata.annotations?.[SOURCE_ANNOTATION]).toBe(usAnnotations[SOURCE_ANNOTATION]);
  expect(restored.metadata.annotations?.[DEMOTED_AT_ANNOTATION]).toBeUndefined();
  expect(restored.metadata.annotations?.[SOURCE_BEFORE_DEMOTION_ANNOTATION]).toBeUndefined();
  expect((await us.undoNativeDemotion!(NAME)).changed).toBe(false);
  // eu still follows us, across us's new timeline.
  await waitFor('900003 on eu', 60_000, async () => ((await ids(z.euBacking)).has(900_003) ? true : null));
});
