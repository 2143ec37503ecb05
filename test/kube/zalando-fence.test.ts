// Fencing a zalando cluster whose Patroni is down, against a REAL kube-apiserver (the stand-in operator and kubelet
// back the pod with a real Patroni member). Patroni is SIGKILLed and its Postgres keeps taking writes, as after a
// crash of the Patroni process: nothing can pause it, and anything left to Patroni would start Postgres again. The
// fence must stop Postgres and leave state the operator keeps (postgresql scaled to 0 instances, annotated), say so,
// and be lifted by unfence. Private ports 29300-29399 and a temp folder.
import { Client } from 'pg';
import { loadSites } from '../../activities/sites/sites-file';
import { createDriverFactory } from '../../activities/sites';
import { alivePid } from '../../activities/sites/local/processes';
import type { PostgresqlObject } from '../../activities/sites/zalando-driver';
import { FENCED_ANNOTATION } from '../../activities/sites/zalando/fence-without-patroni';
import { sql, waitFor } from '../helpers/private-regions';
import { startZalandoHarness, type ZalandoHarness } from './zalando-harness';

let z: ZalandoHarness;
const NAME = 'acid-zfn';
const timings: Record<string, number> = {};

const postgresql = async () => (await z.admin('GET', `/apis/acid.zalan.do/v1/namespaces/eu/postgresqls/${NAME}`)).body as PostgresqlObject;
const podNames = async () => ((await z.admin('GET', `/api/v1/namespaces/eu/pods?labelSelector=cluster-name%3D${NAME}`)).body as { items: Array<{ metadata: { name: string } }> })
  .items.map((p) => p.metadata.name);
/** A real INSERT on the member's own port: with Patroni dead there is no leader to look up, only the Postgres. */
async function takesWrites(id: number): Promise<boolean> {
  const member = z.euBacking.region.getCluster(NAME)!.members[0].name;
  const client = new Client({ ...(await z.euBacking.region.pgConfig(NAME, { member })), connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('INSERT INTO public.writes (id) VALUES ($1)', [id]);
    return true;
  } catch (err) {
    process.stdout.write(`[zalando fence] INSERT ${id} refused: ${(err as Error).message}\n`);
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  const t0 = Date.now();
  z = await startZalandoHarness('zalando-fence', 29300, { [NAME]: { members: 1 } });
  await z.admin('POST', '/apis/acid.zalan.do/v1/namespaces/eu/postgresqls', {
    apiVersion: 'acid.zalan.do/v1', kind: 'postgresql', metadata: { name: NAME },
    spec: { teamId: 'acid', numberOfInstances: 1, postgresql: { version: '15' }, volume: { size: '1Gi' } },
  });
  await waitFor(`eu/${NAME} Running`, 180_000, async () => ((await postgresql()).status?.PostgresClusterStatus === 'Running' ? true : null));
  await sql(z.euBacking, NAME, 'CREATE TABLE public.writes (id bigint primary key)');
  timings.setupMs = Date.now() - t0;
}, 600_000);

afterAll(async () => {
  await z?.stop(timings);
});

describe('zalando: fencing a cluster whose Patroni is down', () => {
  it('stops Postgres, scales the postgresql object to 0 (annotated), says so, stays fenced, and unfence restores it', async () => {
    const driver = createDriverFactory(loadSites(z.sitesFile))('eu');
    const member = z.euBacking.region.getCluster(NAME)!.members[0];
    process.kill(alivePid(z.euBacking.region.memberPaths(NAME, member.name).pidFile)!, 'SIGKILL');
    // Patroni is gone, its Postgres is not: a writer nothing pauses.
    expect(await takesWrites(1)).toBe(true);

    const fence = await driver.fenceCluster(NAME);
    expect(fence).toMatchObject({ changed: true, confirmed: true, cleanShutdown: true });
    expect(fence.finalLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(fence.detail).toMatch(/No Patroni answered .* scaled from 1 to 0 instances and annotated standby-runbooks\.dev\/fenced/);
    const pg = await postgresql();
    expect(pg.spec.numberOfInstances).toBe(0);
    expect(JSON.parse(pg.metadata.annotations![FENCED_ANNOTATION])).toMatchObject({ instances: 1 });
    expect(await podNames()).toEqual([]);
    expect(await takesWrites(2)).toBe(false);

    // Fencing again is success without change, and the operator has kept it at 0 meanwhile.
    const again = await driver.fenceCluster(NAME);
    expect(again).toMatchObject({ changed: false, confirmed: true });
    expect((await postgresql()).spec.numberOfInstances).toBe(0);
    expect(await podNames()).toEqual([]);
    expect(await takesWrites(3)).toBe(false);

    // Lifting the fence brings the instance back; Patroni leads again and the row written before the fence is there.
    expect(await driver.unfenceCluster(NAME)).toEqual({ changed: true });
    const after = await postgresql();
    expect(after.spec.numberOfInstances).toBe(1);
    expect(after.metadata.annotations?.[FENCED_ANNOTATION]).toBeUndefined();
    expect((await driver.describeCluster(NAME))?.leaderRole).toBe('primary');
    expect(await takesWrites(4)).toBe(true);
    expect((await sql<{ id: string }>(z.euBacking, NAME, 'SELECT id FROM public.writes ORDER BY id')).map((r) => Number(r.id))).toEqual([1, 4]);
  });
});
