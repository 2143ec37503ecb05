// Fencing a zalando cluster whose Patroni does not answer (crashed, or its container restarting). Pausing Patroni
// needs Patroni; stopping Postgres through pods/exec does not, but a Patroni that comes back unpaused would start
// it again, and anything done to the StatefulSet alone the operator puts back on its next sync. So the fence is
// written where the operator itself keeps it: the postgresql object scaled to 0 instances (the operator removes
// the pods and keeps it at 0; volumes stay), with the previous count in an annotation the operator never touches.
// Only unfenceCluster (or a human) restores it.
import { patroniRole, type FenceResult } from '../site-driver';
import { memberStateRunning } from '../patroni-states';
import { NotReadyError } from '../../../workflows/contracts/errors';
import { parseControlData } from '../local/pg-control';
import type { PodObject, ZalandoSiteDriver } from '../zalando-driver';

/** On a postgresql object fenced by scaling it to 0: JSON {instances, at, reason}. Removed by unfenceCluster. */
export const FENCED_ANNOTATION = 'standby-runbooks.dev/fenced';

export interface FencedMark {
  /** numberOfInstances before the fence: what unfencing restores. */
  instances: number;
  at: string;
  reason: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// A /cluster role (`leader`, `standby_leader`): `leader` is a primary, in every Patroni version.
const isPrimary = (role: string) => patroniRole(role) === 'primary';

async function writable(d: ZalandoSiteDriver, cluster: string): Promise<boolean> {
  return d.withLeaderSql(cluster, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0].r === false).catch(() => false);
}

export function fencedMarkOf(annotations: Record<string, string> | undefined): FencedMark | null {
  const raw = annotations?.[FENCED_ANNOTATION];
  if (!raw) return null;
  try {
    const m = JSON.parse(raw) as FencedMark;
    return typeof m.instances === 'number' && m.instances > 0 ? m : null;
  } catch {
    return null;
  }
}

/** Already fenced by a scale to 0: nothing runs and nothing will start it; confirmed once no pod is left. */
export async function alreadyScaledDown(d: ZalandoSiteDriver, cluster: string, mark: FencedMark): Promise<FenceResult> {
  const pods = await d.pods(cluster);
  const confirmed = pods.length === 0 || (await d.allRefuseConnections(pods));
  return {
    changed: false, confirmed, method: 'already-stopped', finalLsn: null, cleanShutdown: false,
    detail: `${d.site}/${cluster} is already fenced: postgresql/${cluster} scaled to 0 instances since ${mark.at} (${mark.reason}; ` +
      `${mark.instances} to restore), ${pods.length ? `${pods.length} pod(s) still terminating` : 'no pod left'}.`,
  };
}

export async function fenceWithoutPatroni(
  d: ZalandoSiteDriver, cluster: string, pods: PodObject[], spilo: { container: string; pgdata: string },
): Promise<FenceResult> {
  const pg = (await d.getPostgresql(cluster))!;
  const instances = pg.spec.numberOfInstances;
  // Postgres outlives a crashed Patroni: stop it first, through the pods, so its last WAL is flushed and its
  // shutdown checkpoint can be read (pg_ctl answers non-zero when nothing ran: that is fine here).
  const stopped: string[] = [];
  for (const pod of pods) {
    const r = await d.kube.exec(pod.metadata.name, spilo.container, ['pg_ctl', 'stop', '-m', 'fast', '-w', '-D', spilo.pgdata], 120_000).catch(() => null);
    if (r?.exitCode === 0) stopped.push(pod.metadata.name);
  }
  // The former primary is the member whose control file says "shut down" (a replica's says "in recovery").
  let finalLsn: string | null = null;
  let cleanShutdown = false;
  for (const pod of pods) {
    const r = await d.kube.exec(pod.metadata.name, spilo.container, ['pg_controldata', spilo.pgdata], 60_000).catch(() => null);
    const c = r?.exitCode === 0 ? parseControlData(r.stdout) : null;
    if (c?.state === 'shut down') {
      finalLsn = c.checkpointLsn;
      cleanShutdown = true;
    }
  }
  const mark: FencedMark = { instances, at: new Date().toISOString(), reason: 'no Patroni answered, so it could not be paused' };
  await d.kube.mergePatch(d.pgPath(cluster), { metadata: { annotations: { [FENCED_ANNOTATION]: JSON.stringify(mark) } }, spec: { numberOfInstances: 0 } });
  const deadline = Date.now() + 120_000;
  while ((await d.pods(cluster)).length > 0) {
    if (Date.now() > deadline) throw new NotReadyError(`${d.site}/${cluster}: scaled to 0 instances, but its pods are still there after 120 s`, { cluster });
    await sleep(1000);
  }
  const confirmed = await d.allRefuseConnections(pods);
  return {
    changed: true,
    confirmed,
    method: stopped.length ? 'paused-and-stopped' : 'already-stopped',
    finalLsn,
    cleanShutdown,
    detail: `No Patroni answered in ${d.site}/${cluster}, so it could not be paused: ` +
      `${stopped.length ? `Postgres stopped through pods/exec in ${stopped.join(', ')}` : 'no Postgres was running'}, then postgresql/${cluster} scaled ` +
      `from ${instances} to 0 instances and annotated ${FENCED_ANNOTATION} (the operator keeps it at 0 and removed the pods, so no Patroni can ` +
      'start Postgres again; the volumes are kept). Lifting the fence (unfence, or a human) restores the instance count.',
  };
}

/** Lifts a scale-to-0 fence: the instance count comes back and the operator starts the pods; Patroni then leads. */
export async function unfenceScaledDown(d: ZalandoSiteDriver, cluster: string, mark: FencedMark): Promise<void> {
  await d.kube.mergePatch(d.pgPath(cluster), { metadata: { annotations: { [FENCED_ANNOTATION]: null } }, spec: { numberOfInstances: mark.instances } });
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    const leader = (await d.pods(cluster)).length >= mark.instances ? await d.leaderPod(cluster) : null;
    // Patroni takes the leader key before Postgres leaves recovery: a primary is back only once it accepts writes.
    if (leader && memberStateRunning(leader.member.state) && (!isPrimary(leader.member.role) || (await writable(d, cluster)))) return;
    await sleep(1000);
  }
  throw new NotReadyError(`${d.site}/${cluster}: ${mark.instances} instance(s) restored, but no Patroni leader answers yet`, { cluster });
}
