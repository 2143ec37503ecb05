// The checks of a drill that run before anything changes: the request, the protected cluster (a primary that
// archives), the DR site, and the DR copy (a throwaway name free or left by an earlier drill of this cluster; in
// disruptive mode the real standby). Every refusal says what to fix.
import { control, siteActivities } from '../activity-proxies';
import { parseClusterRef, zalandoClusterNameProblem, type ClusterRef } from '../contracts/clusters';
import { BadInputError, ClusterNotFoundError, PreconditionFailedError } from '../contracts/errors';
import { rejectUnknownFields } from '../contracts/input-fields';
import { RUNBOOK_NAMES, runbookWorkflowId } from '../contracts/runbooks';
import type { DrillInput, DrillMode } from '../contracts/drills';
import { check, refuse } from './failures';
import type { RunbookRecord } from './runbook-record';
import type { ClusterFacts } from '../../activities/sites/site-driver';

export interface DrillPlan {
  mode: DrillMode;
  source: ClusterRef & { ref: string; facts: ClusterFacts };
  drSite: string;
  /** The DR copy: the throwaway (non-disruptive) or the real standby (disruptive). */
  copy: ClusterRef & { ref: string; facts: ClusterFacts | null };
  /** What the throwaway records as its creator: the drill of this cluster, whichever run (a schedule's too). */
  guard: string;
  tables: string[];
  keepThrowaway: boolean;
  approvalTimeoutSeconds: number;
  replayTimeoutSeconds: number;
}

const SITE = /^[a-z][a-z0-9-]{0,30}$/;
const TABLE = /^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_$]*$/;
const EXAMPLE = '{"cluster": "eu/acid-demo", "drSite": "us", "verifyTables": ["public.orders"]}';

function parseInput(input: DrillInput) {
  if (!input || typeof input !== 'object') throw new BadInputError(`input must be a JSON object: ${EXAMPLE}`);
  rejectUnknownFields<DrillInput>(input, {
    cluster: true, drSite: true, mode: true, standby: true, verifyTables: true, throwawayName: true, keepThrowaway: true,
    approvalTimeoutSeconds: true, limits: true, requesterIdToken: true,
  });
  const source = parseClusterRef(input.cluster, 'cluster');
  const mode: DrillMode = input.mode ?? 'non-disruptive';
  if (mode !== 'non-disruptive' && mode !== 'disruptive') {
    throw new BadInputError(`mode "${String(input.mode)}" must be "non-disruptive" (a throwaway copy) or "disruptive" (the real promote and switchback)`);
  }
  if (typeof input.drSite !== 'string' || !SITE.test(input.drSite)) {
    throw new BadInputError(`drSite "${String(input.drSite)}" must name the DR site, e.g. "us"`);
  }
  if (input.drSite === source.site) {
    throw new BadInputError(`drSite "${input.drSite}" is the site of ${input.cluster} itself: name the site that would take over`);
  }
  const name = input.throwawayName ?? `${source.cluster}-drill`;
  const problem = typeof name === 'string' ? zalandoClusterNameProblem(name) : 'throwawayName must be a string';
  if (problem) {
    throw new BadInputError(`throwaway name: ${problem}${input.throwawayName === undefined ? ': give a shorter "throwawayName"' : ''}`);
  }
  if (input.standby !== undefined && mode !== 'disruptive') throw new BadInputError('standby is for mode "disruptive" only: leave it out');
  const copy = mode === 'disruptive'
    ? parseClusterRef(input.standby ?? `${input.drSite}/${source.cluster}`, 'standby')
    : { site: input.drSite, cluster: name };
  if (copy.site !== input.drSite) throw new BadInputError(`standby "${input.standby}" is not at drSite "${input.drSite}"`);
  const tables = input.verifyTables ?? [];
  if (!Array.isArray(tables) || tables.some((t) => typeof t !== 'string' || !TABLE.test(t))) {
    throw new BadInputError('verifyTables must be a list of "<schema>.<table>" names in lower case, e.g. ["public.orders"]');
  }
  if (new Set(tables).size !== tables.length) throw new BadInputError('verifyTables names a table twice');
  for (const [k, v] of Object.entries(input.limits ?? {})) {
    if (typeof v !== 'number' || !(v > 0)) throw new BadInputError(`limits.${k} must be a positive number of seconds`);
  }
  const approvalTimeoutSeconds = input.approvalTimeoutSeconds ?? 3600;
  if (typeof approvalTimeoutSeconds !== 'number' || !(approvalTimeoutSeconds > 0)) throw new BadInputError('approvalTimeoutSeconds must be > 0');
  return { source, mode, copy, tables, approvalTimeoutSeconds };
}

export async function validateDrill(record: RunbookRecord, input: DrillInput): Promise<DrillPlan> {
  const p = check(() => parseInput(input));
  const copyRef = `${p.copy.site}/${p.copy.cluster}`;
  await control.siteResolveClusterRefs({ refs: { cluster: input.cluster, drSite: copyRef } });
  const [facts, copyFacts] = await Promise.all([
    siteActivities(p.source.site).siteDescribeCluster({ ref: input.cluster }),
    siteActivities(p.copy.site).siteDescribeCluster({ ref: copyRef }),
  ]);
  if (!facts) refuse(new ClusterNotFoundError(`${input.cluster} does not exist at site ${p.source.site}`));
  if (facts.leaderRole !== 'primary' || facts.standbySource) {
    refuse(new PreconditionFailedError(`${input.cluster} is not a primary (leader role: ${facts.leaderRole}): drill the cluster that takes the writes`));
  }
  if (!facts.archive.walPrefix) refuse(new PreconditionFailedError(`${input.cluster} does not archive to S3: a drill restores from its archive; configure it first`));
  const guard = runbookWorkflowId(RUNBOOK_NAMES.drill, input.cluster);
  if (p.mode === 'non-disruptive' && copyFacts && copyFacts.drill !== guard) {
    refuse(new PreconditionFailedError(
      `${copyRef} already exists and is not a throwaway of ${guard}${copyFacts.drill ? ` (it belongs to ${copyFacts.drill})` : ''}: the drill never touches it; give another "throwawayName"`,
    ));
  }
  if (p.mode === 'disruptive' && (!copyFacts || copyFacts.standbySource?.sourceRef !== input.cluster)) {
    refuse(new PreconditionFailedError(
      `${copyRef} ${copyFacts ? `is not a standby of ${input.cluster}` : 'does not exist'}: a disruptive drill promotes ${input.cluster}'s real standby; name it with "standby"`,
    ));
  }
  if (p.mode === 'disruptive' && !copyFacts!.standbySource?.host) {
    refuse(new PreconditionFailedError(`${copyRef} replays from the archive only: the disruptive drill's planned switchover needs a streaming standby (provision it with method "both")`));
  }
  record.step('validate-request', 'done',
    `Checked the ${p.mode} drill of ${input.cluster} (primary ${facts.leaderMember}, archive ${facts.archive.walPrefix}) at site ${input.drSite}: ` +
    (p.mode === 'disruptive' ? `its standby ${copyRef} will be promoted and switched back.` : `throwaway ${copyRef} ${copyFacts ? 'is left from an earlier drill and will be replaced' : 'is free'}.`),
    { walPrefix: facts.archive.walPrefix, copy: copyRef, tables: p.tables });
  return {
    mode: p.mode, drSite: input.drSite, guard, tables: p.tables,
    source: { ...p.source, ref: input.cluster, facts },
    copy: { ...p.copy, ref: copyRef, facts: copyFacts },
    keepThrowaway: input.keepThrowaway === true,
    approvalTimeoutSeconds: p.approvalTimeoutSeconds,
    replayTimeoutSeconds: input.limits?.replayTimeoutSeconds ?? 1800,
  };
}
