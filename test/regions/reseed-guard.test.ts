// Reseed at the moment of deletion (issue #14, item 7), on real Patroni 3.0.2 / Postgres 15 / etcd / versitygw
// through the local SiteDriver: the target is checked again when the reseed would stop it (not a primary, the system
// assessed), and its data is moved aside, not deleted, until the new standby replays.
// P (west) is the promoted cluster; F (east) was built from P's backup, so it holds P's system, as a former primary
// of P does. Private layout: ports 28000-28299 (shifted by DR_TEST_PRIVATE_PORT_SHIFT) and a temp folder.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalSiteDriver } from '../../activities/sites/local-driver';
import { clusterDir, clustersDir } from '../../activities/sites/local/cluster-files';
import { postmasterPid, readControlData } from '../../activities/sites/local/pg-control';
import type { ClusterFacts, FormerPrimaryAssessment, ReseedRequest } from '../../activities/sites/site-driver';
import { PreconditionFailedError } from '../../workflows/contracts/errors';
import { privateRegions, sql, waitFor } from '../helpers/private-regions';

const regions = privateRegions('reseed-guard', 28000);
const east = regions.driverFor('east', 28100);
const west = regions.driverFor('west', 28200);
const log = regions.log;

const count = async (d: LocalSiteDriver, c: string, where: string) =>
  (await sql<{ n: number }>(d, c, `select count(*)::int as n from rows where ${where}`))[0].n;
const asides = (d: LocalSiteDriver, c: string) =>
  readdirSync(clustersDir(d.cfg.dataDir)).filter((n) => n.startsWith(`.aside-${c}-`)).map((n) => join(clustersDir(d.cfg.dataDir), n));
const pendingFile = (d: LocalSiteDriver, c: string) => join(clustersDir(d.cfg.dataDir), `.reseed-${c}.json`);

async function copySecrets(from: LocalSiteDriver, src: string, to: LocalSiteDriver, dst: string): Promise<void> {
  for (const u of await from.listSecretUsers(src)) {
    const v = await from.readSecret(src, u);
    if (v) await to.writeSecret(dst, u, v);
  }
}

/** What a refusal must leave as it was: the cluster file, every member's data directory and system, the DCS leader. */
async function snapshot(d: LocalSiteDriver, c: string) {
  const info = d.region.getCluster(c)!;
  const members = await Promise.all(info.members.map(async (m) => ({
    member: m.name,
    pgVersionFile: existsSync(join(m.dataDir, 'PG_VERSION')),
    systemIdentifier: (await readControlData(m.dataDir, 'postgres'))?.systemIdentifier ?? null,
    postmaster: postmasterPid(m.dataDir) !== null,
  })));
  return { uid: info.uid, members, asides: asides(d, c), pending: existsSync(pendingFile(d, c)) };
}

let pFacts: ClusterFacts;
let pBackup: string;
let assessedF: FormerPrimaryAssessment;
let req: ReseedRequest;

beforeAll(async () => {
  await regions.start([east, west]);
  await west.region.createCluster({ name: 'acid-p', pgVersion: 15, archive: true, members: 1 });
  await sql(west, 'acid-p', "create table rows(id bigserial primary key, note text not null); insert into rows(note) values ('p-1')");
  const b = await west.region.backupPush('acid-p', { timeoutMs: 300_000 });
  expect(b.exitCode).toBe(0);
  pBackup = b.backupName!;
  pFacts = (await west.describeCluster('acid-p'))!;
  await copySecrets(west, 'acid-p', east, 'acid-f');
  await east.createStandbyCluster({
    cluster: 'acid-f', sourceRef: 'west/acid-p', fromHost: pFacts.streamingEndpoint, fromArchive: { archive: pFacts.archive, backupName: pBackup },
  });
  await waitFor('p-1 on F', 60_000, async () => ((await count(east, 'acid-f', "note = 'p-1'")) === 1 ? true : null));
  req = {
    sourceRef: 'west/acid-p', fromHost: pFacts.streamingEndpoint, fromArchive: { archive: pFacts.archive, backupName: pBackup },
    runTag: 'run-0001',
  };
});

afterAll(async () => {
  await regions.stop([east, west]);
  if (!process.env.KEEP_RESEED_GUARD) rmSync(regions.tmp, { recursive: true, force: true });
  else log(`kept ${regions.tmp}`);
});

describe('reseed re-checks its target at the moment of deletion and keeps the old data aside', () => {
  test('a target promoted after its assessment is refused: its data intact, it still takes writes', async () => {
    assessedF = await east.assessFormerPrimary('acid-f');
    log(`assessed F: running ${assessedF.running}, system ${assessedF.systemIdentifier}, timeline ${assessedF.timeline}`);
    expect(assessedF.systemIdentifier).not.toBeNull();
    // Someone promotes F between the assessment and the reseed.
    expect((await east.removeStandbyConfig('acid-f')).changed).toBe(true);
    await sql(east, 'acid-f', "insert into rows(note) values ('f-own')");
    const before = await snapshot(east, 'acid-f');
    const err = await east.reseedAsStandby('acid-f', { ...req, assessedSystemIdentifier: assessedF.systemIdentifier }).then(
      (r) => new Error(`reseed went ahead on a primary: ${JSON.stringify(r)}`),
      (e: Error) => e,
    );
    log(`reseed of promoted F: ${err.message}`);
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect(err.message).toMatch(/runs as a primary/);
    expect(await snapshot(east, 'acid-f')).toEqual(before);
    await sql(east, 'acid-f', "insert into rows(note) values ('f-after-refusal')");
    expect(await count(east, 'acid-f', "note in ('p-1', 'f-own', 'f-after-refusal')")).toBe(3);
  });

  test('a target holding another system than the one assessed is refused, nothing changed', async () => {
    // X holds a system of its own (initdb), as a cluster recreated under an assessed name would.
    await east.region.createCluster({ name: 'acid-x', pgVersion: 15, archive: true, members: 1 });
    await sql(east, 'acid-x', "create table rows(id bigserial primary key, note text not null); insert into rows(note) values ('x-own')");
    expect((await east.fenceCluster('acid-x')).confirmed).toBe(true);
    await copySecrets(west, 'acid-p', east, 'acid-x');
    const before = await snapshot(east, 'acid-x');
    const own = before.members[0].systemIdentifier!;
    expect(own).not.toBe(assessedF.systemIdentifier);
    const err = await east.reseedAsStandby('acid-x', { ...req, assessedSystemIdentifier: assessedF.systemIdentifier }).then(
      (r) => new Error(`reseed went ahead on another system: ${JSON.stringify(r)}`),
      (e: Error) => e,
    );
    log(`reseed of X with F's assessed system: ${err.message}`);
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect(err.message).toContain(own);
    expect(err.message).toContain(assessedF.systemIdentifier!);
    expect(await snapshot(east, 'acid-x')).toEqual(before);
    expect(existsSync(clusterDir(east.cfg.dataDir, 'acid-x'))).toBe(true);
  });

  test('a normal reseed keeps the old data aside until the new standby replays; retries never touch the new data', async () => {
    expect((await east.fenceCluster('acid-f')).confirmed).toBe(true);
    const oldUid = east.region.getCluster('acid-f')!.uid;
    const full = { ...req, assessedSystemIdentifier: assessedF.systemIdentifier };

    // A worker crash right after the data was moved (a progress callback that throws at the bootstrap).
    const crash = new Error('simulated worker crash after the move aside');
    await expect(east.reseedAsStandby('acid-f', full, (d) => { if (d.startsWith('bootstrap')) throw crash; })).rejects.toBe(crash);
    const [aside] = asides(east, 'acid-f');
    log(`after the crash: aside ${aside}, cluster ${east.region.getCluster('acid-f') ? 'present' : 'absent'}`);
    expect(aside).toMatch(/\.aside-acid-f-\d{8}T\d{6}Z-run-0001$/);
    expect(asides(east, 'acid-f')).toHaveLength(1);
    expect(east.region.getCluster('acid-f')).toBeNull();
    const keptMembers = readdirSync(aside).filter((n) => n.startsWith('acid-f-'));
    expect(keptMembers).toHaveLength(2);
    for (const m of keptMembers) {
      expect((await readControlData(join(aside, m, 'pgdata'), 'postgres'))?.systemIdentifier).toBe(assessedF.systemIdentifier);
    }

    // The retry finishes; the aside copy is still there when the new standby has proven replay, and only then goes.
    const steps: string[] = [];
    let asideAtRemoval: boolean | null = null;
    let newClusterAtRemoval: boolean | null = null;
    const r = await east.reseedAsStandby('acid-f', full, (d) => {
      steps.push(d);
      if (d.startsWith('remove-aside')) {
        asideAtRemoval = existsSync(aside);
        newClusterAtRemoval = east.region.getCluster('acid-f') !== null;
      }
    });
    log(`reseed of F: ${JSON.stringify(r)}\n  ${steps.join('\n  ')}`);
    expect(r).toMatchObject({ changed: true, oldData: { location: aside, removed: true } });
    expect(r.oldData!.replayedLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(asideAtRemoval).toBe(true);
    expect(newClusterAtRemoval).toBe(true);
    expect(existsSync(aside)).toBe(false);
    const newUid = east.region.getCluster('acid-f')!.uid;
    expect(newUid).not.toBe(oldUid);
    await sql(west, 'acid-p', "insert into rows(note) values ('p-after-reseed')");
    await waitFor('p-after-reseed on F', 120_000, async () => ((await count(east, 'acid-f', "note = 'p-after-reseed'")) === 1 ? true : null));
    expect(await count(east, 'acid-f', "note like 'f-%'")).toBe(0);

    // The result was lost: the retry finds its own incarnation, reports where the old data was, moves nothing.
    const again = await east.reseedAsStandby('acid-f', full);
    log(`reseed of F again: ${JSON.stringify(again)}`);
    expect(again).toMatchObject({ changed: false, oldData: { location: aside, removed: true } });
    expect(east.region.getCluster('acid-f')!.uid).toBe(newUid);
    expect(asides(east, 'acid-f')).toEqual([]);
    await sql(west, 'acid-p', "insert into rows(note) values ('p-after-retry')");
    await waitFor('p-after-retry on F', 120_000, async () => ((await count(east, 'acid-f', "note = 'p-after-retry'")) === 1 ? true : null));
    expect(await count(east, 'acid-f', "note like 'p-%'")).toBe(3);
  });
});
