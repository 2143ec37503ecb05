// failback-reseed: bring the old site back as a standby of the promoted cluster — rewind where safe, reseed
// otherwise — after keeping what it would lose and after a human approved; optionally switch back to the
// original topology with the zero-loss planned switchover (a child promote with its own approval).
import { ApplicationFailure, executeChild, patched, workflowInfo } from '@temporalio/workflow';
import { siteActivities, siteLongActivities } from './activity-proxies';
import {
  RUNBOOK_NAMES, runbookWorkflowId,
  type ApprovalRecord, type FailbackInput, type FailbackResult, type PromoteResult,
} from './contracts/runbooks';
import { ApprovalGate } from './phases/approval-gate';
import { failureFacts } from './phases/failures';
import { assessFormerPrimary, chooseStrategy, validateFailback, type FailbackPlan, type FormerPrimaryState } from './phases/failback-assess';
import { RunbookRecord } from './phases/runbook-record';
import { nextEpoch, withEpoch } from './phases/fencing-epoch';
import { keepStandbySlot, manageStandbySlots, releaseStandbySlot } from './phases/standby-slots';
import type { forceBackup } from './force-backup';
import type { ArchiveCheck } from './contracts/archive-check';
import { checkArchive } from './phases/archive-check';
import { retainBackups } from './phases/retention';
import type { promote } from './promote';

export async function failbackReseed(input: FailbackInput): Promise<FailbackResult> {
  const record = new RunbookRecord(RUNBOOK_NAMES.failbackReseed, String(input?.formerPrimary ?? 'unknown'));
  const gate = new ApprovalGate(record);
  let changing = false;
  try {
    const plan = await record.phase('validate', () => validateFailback(record, input));
    await gate.identifyRequester(input.requesterIdToken);
    const result: FailbackResult = {
      primary: plan.primary.ref, formerPrimary: plan.former.ref, alreadyRejoined: plan.alreadyRejoined, strategy: null,
      choiceReason: 'already a standby of the primary', forkLsn: null, divergentBytes: null, quarantine: null,
      rewound: false, approval: null, rejoinedAtLsn: null, switchBack: null, phaseDurationsMs: {},
    };
    if (!plan.alreadyRejoined) {
      const state = await record.phase('assess', () => assessFormerPrimary(record, plan));
      const choice = await record.phase('choose', async () => chooseStrategy(record, plan, state));
      Object.assign(result, { strategy: choice.strategy, choiceReason: choice.reason, forkLsn: state.forkLsn, divergentBytes: state.divergentBytes });
      changing = true;
      // The fence and the rejoin decide the former primary's role: they carry an epoch newer than any stored, so an
      // older run's late step cannot undo them. Runs from before epochs carry none (patch marker).
      const epoch = patched('fencing-epoch')
        ? await record.phase('protect', () => nextEpoch(record, plan.former, plan.primary, { otherReachable: true, regionTimeoutSeconds: 60 }))
        : undefined;
      result.quarantine = await record.phase('protect', () => protectFormerPrimary(record, plan, state, epoch));
      result.approval = await record.phase('approve', () => approveRejoin(record, gate, plan, state, choice.strategy, result.quarantine));
      await record.phase('credentials', () => ensureCredentialParity(record, plan));
      const rejoined = await record.phase('rejoin', () => rejoin(record, plan, choice.strategy, state, epoch));
      result.rewound = rejoined.rewound;
      if (rejoined.strategy !== choice.strategy) {
        Object.assign(result, { strategy: rejoined.strategy, choiceReason: `${choice.reason}; pg_rewind failed, so reseeded as approved` });
      }
    }
    result.rejoinedAtLsn = await record.phase('catch-up', () => waitUntilFollowing(record, plan));
    if (patched('archive-check')) result.archiveCheck = await record.phase('check-archive', () => checkPrimaryArchive(record, plan));
    if (input.switchBack) result.switchBack = await record.phase('switch-back', () => switchBack(record, plan));
    // Only after everything above succeeded: the primary (the former one again after a switchback) prunes its own
    // archive. Runs from before this option never had it (patch marker).
    if (input.retainBackups !== undefined && patched('failback-retention')) {
      const primary = result.switchBack ? plan.former.ref : plan.primary.ref;
      result.retention = await record.phase('retention', () => retainBackups(record, primary, input.retainBackups!, false));
    }
    record.step('report', 'done', `${plan.former.ref} follows ${plan.primary.ref} (${result.strategy ?? 'already'}${result.rewound ? ', rewound' : ''}), caught up at ${result.rejoinedAtLsn}` +
      `${result.quarantine ? `; divergent WAL kept at ${result.quarantine.manifest}` : ''}${result.switchBack ? `; switched back: ${plan.former.ref} is primary again` : ''}.`);
    record.finish(plan.alreadyRejoined && !result.switchBack ? 'already' : 'succeeded');
    return { ...result, phaseDurationsMs: record.durations() };
  } catch (err) {
    record.failed(err, { changedAnything: changing });
    throw err;
  }
}

/** Fence a running former primary (a split brain must stop taking writes), then keep its divergent WAL. */
async function protectFormerPrimary(record: RunbookRecord, plan: FailbackPlan, s: FormerPrimaryState, epoch: number | undefined) {
  if (s.assessment.running) {
    const fence = await siteLongActivities(plan.former.site, 120).siteFenceCluster({ ref: plan.former.ref, ...withEpoch(epoch) });
    record.step('fence-former-primary', fence.confirmed ? 'done' : 'failed', `${plan.former.ref} was running: ${fence.detail}`);
    if (!fence.confirmed) throw ApplicationFailure.nonRetryable(`${plan.former.ref} could not be fenced: nothing was destroyed; stop it by hand and rerun`, 'FenceFailedError');
  }
  if (s.divergentBytes === 0) {
    record.step('quarantine', 'skipped', `${plan.former.ref} wrote nothing after the fork point ${s.forkLsn}: nothing to keep.`);
    return null;
  }
  const prefix = `quarantine/${plan.former.cluster}/${workflowInfo().runId}`;
  const q = await siteLongActivities(plan.former.site, 600).siteQuarantineWal({
    ref: plan.former.ref, fromLsn: s.forkLsn ?? '0/0', timeline: s.assessment.timeline ?? 1, destinationSite: plan.former.site, prefix,
  });
  record.step('quarantine', q.changed ? 'done' : 'already',
    `Kept ${q.objects.length} WAL files (${q.bytes} bytes, ${q.divergentBytes ?? '?'} divergent bytes up to ${q.endOfWal ?? '?'}) of ${plan.former.ref} at ${q.manifest}.`,
    { manifest: q.manifest, objects: q.objects.length, bytes: q.bytes });
  return { manifest: q.manifest, objects: q.objects.length, bytes: q.bytes };
}

async function approveRejoin(
  record: RunbookRecord, gate: ApprovalGate, plan: FailbackPlan, s: FormerPrimaryState, strategy: string,
  quarantine: FailbackResult['quarantine'],
): Promise<ApprovalRecord> {
  // auto approves the fallback too: a failed pg_rewind leaves the cluster down, and waiting for a second human
  // decision then only lengthens the time without a standby.
  const steps = strategy === 'reseed'
    ? `WIPE and reseed ${plan.former.ref} as a standby of ${plan.primary.ref}`
    : plan.strategy === 'auto'
      ? `Rewind ${plan.former.ref} as a standby of ${plan.primary.ref}; should pg_rewind fail, WIPE and reseed it from ${plan.primary.ref}'s latest backup instead`
      : `Rewind ${plan.former.ref} as a standby of ${plan.primary.ref} (should pg_rewind fail, the run stops and it stays down)`;
  return gate.decide({
    gate: 'failback', runbook: RUNBOOK_NAMES.failbackReseed, cluster: plan.former.ref,
    plan: `${steps}. ${s.divergentBytes ?? 'An unknown amount of'} bytes of WAL it wrote after the fork will be discarded from it` +
      `${quarantine ? `; kept at ${quarantine.manifest}` : ''}.`,
    estimate: null, fence: 'CONFIRMED',
    requires: { acknowledgeDataLoss: s.divergentBytes !== 0, acknowledgeUnconfirmedFence: false },
  }, plan.approvalTimeoutSeconds, {
    what: `the ${strategy} of ${plan.former.ref}`,
    abortedMeans: `${plan.former.ref} stays fenced and untouched, nothing destroyed`,
    nextStep: 'rerun failback-reseed and decide',
  });
}

async function ensureCredentialParity(record: RunbookRecord, plan: FailbackPlan): Promise<void> {
  const r = await siteActivities(plan.former.site).secretsCopyClusterSecrets({ from: plan.primary.ref, to: plan.former.ref });
  record.step('credential-parity', r.copied.length ? 'done' : 'already', r.copied.length
    ? `Credentials of ${r.copied.join(', ')} at ${plan.former.ref} differed from ${plan.primary.ref}: replaced by the primary's.`
    : `Credentials of ${plan.former.ref} already match ${plan.primary.ref}.`);
}

async function rejoin(
  record: RunbookRecord, plan: FailbackPlan, strategy: 'rewind' | 'reseed', state: FormerPrimaryState, epoch: number | undefined,
): Promise<{ strategy: 'rewind' | 'reseed'; rewound: boolean }> {
  const { streamingEndpoint, archive } = plan.primary.facts;
  // The former primary still configures the slot its old standby (now the primary) streamed through; the primary
  // keeps one for the former primary before it follows.
  let slotName: string | undefined;
  if (manageStandbySlots()) {
    await releaseStandbySlot(record, plan.former, plan.primary.ref, `${plan.primary.ref} no longer streams from it`);
    slotName = await keepStandbySlot(record, plan.primary, plan.former.ref);
  }
  if (strategy === 'rewind') {
    try {
      const r = await siteLongActivities(plan.former.site, 900).siteDemoteToStandby({
        ref: plan.former.ref, sourceRef: plan.primary.ref, fromHost: streamingEndpoint, fromArchive: { archive }, ...withEpoch(epoch),
        ...(slotName ? { slotName } : {}),
      });
      record.step('rewind', r.changed ? 'done' : 'already', `${plan.former.ref} restarted as a standby of ${plan.primary.ref}${r.rewound ? '; Patroni ran pg_rewind' : '; no rewind was needed'}.` +
        `${walSourcesOfRewind(plan, r.targetWalFromArchive)}`,
        { rewound: r.rewound, rewindLog: r.rewindLog.slice(-5), targetWalFromArchive: r.targetWalFromArchive ?? null, replaysFrom: archive.walPrefix });
      return { strategy, rewound: r.rewound };
    } catch (err) {
      const f = failureFacts(err);
      if (f.type !== 'RewindFailedError' || plan.strategy !== 'auto') throw err;
      record.step('rewind', 'failed', `${f.message.split('\n')[0]}. Falling back to the reseed approved with it.`);
    }
  }
  await reseed(record, plan, state, epoch, slotName);
  return { strategy: 'reseed', rewound: false };
}

/** Where the WAL of the rewind came from: the former primary's own archive for its timeline, the primary's for what follows. */
function walSourcesOfRewind(plan: FailbackPlan, wal: { prefix: string | null; fetched: string[]; missing: string[] } | undefined): string {
  const own = wal?.fetched.length
    ? ` pg_rewind read ${wal.fetched.length} WAL file(s) of ${plan.former.ref}'s own timeline (${wal.fetched[0]}..${wal.fetched[wal.fetched.length - 1]}) from its own archive ${wal.prefix}, since its pg_wal no longer held them.`
    : '';
  const missing = wal?.missing.length ? ` Not in that archive: ${wal.missing.join(', ')}.` : '';
  return `${own}${missing} It replays ${plan.primary.ref}'s WAL from ${plan.primary.facts.archive.walPrefix}${plan.primary.facts.streamingEndpoint ? ' and by streaming' : ''}.`;
}

async function reseed(record: RunbookRecord, plan: FailbackPlan, state: FormerPrimaryState, epoch: number | undefined, slotName?: string): Promise<void> {
  const primaryTimeline = state.primaryTimeline;
  const { streamingEndpoint, archive } = plan.primary.facts;
  // The primary's latest proven backup of its current timeline; none yet (promoted without one): take it now.
  const existing = await siteActivities(plan.primary.site).s3FindBackupAtOrAfter({
    archive, requiredLsn: '0/0', timeline: primaryTimeline, clusterRef: plan.primary.ref,
  });
  const backupName = existing?.name ?? (await executeChild<typeof forceBackup>('forceBackup', {
    workflowId: runbookWorkflowId(RUNBOOK_NAMES.forceBackup, plan.primary.ref), taskQueue: workflowInfo().taskQueue,
    args: [{ cluster: plan.primary.ref }],
  })).backupName;
  const r = await siteLongActivities(plan.former.site, 1800).siteReseedAsStandby({
    ref: plan.former.ref, sourceRef: plan.primary.ref, fromHost: streamingEndpoint, fromArchive: { archive, backupName }, ...withEpoch(epoch),
    ...(slotName ? { slotName } : {}),
    // The driver re-checks at the moment of the stop that this is still the system assessed and not a primary.
    assessedSystemIdentifier: state.assessment.systemIdentifier, runTag: workflowInfo().runId,
  });
  const old = r.oldData;
  record.step('reseed', r.changed ? 'done' : 'already', `Re-checked ${plan.former.ref} (not a primary, system ${state.assessment.systemIdentifier ?? 'unknown'}), ` +
    `set its data aside and bootstrapped it from ${plan.primary.ref}'s backup ${backupName} as its standby.` +
    (old ? ` The old data was kept at ${old.location} ${old.removed ? `and removed once the new standby replayed (${old.replayedLsn})` : 'and is still there'}.` : '') +
    (r.previousWalPrefix ? ` It archives under ${r.walPrefix} from now on; ${r.previousWalPrefix}, with its diverged timeline, is left as it was.` : ''),
    { walPrefix: r.walPrefix, previousWalPrefix: r.previousWalPrefix, oldData: old ?? null });
}

/** What the rejoined standby replays from: the primary's newest backup of its timeline and its WAL since. */
async function checkPrimaryArchive(record: RunbookRecord, plan: FailbackPlan): Promise<ArchiveCheck | null> {
  const { archive } = plan.primary.facts;
  const pos = await siteActivities(plan.primary.site).postgresCurrentPosition({ ref: plan.primary.ref });
  const newest = await siteActivities(plan.primary.site).s3FindBackupAtOrAfter({ archive, requiredLsn: '0/0', timeline: pos.timeline, clusterRef: plan.primary.ref });
  if (!newest) {
    record.step('check-archive', 'skipped', `${plan.primary.ref} has no backup of timeline ${pos.timeline} in ${archive.walPrefix} yet: nothing to restore from; take one with force-backup.`);
    return null;
  }
  return checkArchive(record, RUNBOOK_NAMES.failbackReseed, {
    site: plan.primary.site, archiveSite: plan.primary.site, walPrefix: archive.walPrefix, backupName: newest.name, clusterRef: plan.primary.ref, position: pos,
  }, `The archive ${plan.former.ref} now replays from, from ${newest.name}`);
}

async function waitUntilFollowing(record: RunbookRecord, plan: FailbackPlan): Promise<string> {
  const markerId = `${workflowInfo().workflowId}@${workflowInfo().runId}`;
  const m = await siteActivities(plan.primary.site).postgresWriteMarker({ ref: plan.primary.ref, markerId, runbook: RUNBOOK_NAMES.failbackReseed, switchWal: true });
  const r = await siteLongActivities(plan.former.site, plan.replayTimeoutSeconds).postgresWaitForReplay({
    ref: plan.former.ref, markerId, targetLsn: m.lsn, timeoutSeconds: plan.replayTimeoutSeconds, pollIntervalSeconds: 2,
  });
  record.step('catch-up', 'done', `${plan.former.ref} replayed ${plan.primary.ref}'s marker (${m.lsn}) at ${r.replayedLsn}.`);
  return r.replayedLsn;
}

async function switchBack(record: RunbookRecord, plan: FailbackPlan): Promise<PromoteResult> {
  record.waiting(`approval of the switchback: child promote/${plan.former.ref} (approve it there)`);
  const r = await executeChild<typeof promote>('promote', {
    workflowId: runbookWorkflowId(RUNBOOK_NAMES.promote, plan.former.ref), taskQueue: workflowInfo().taskQueue,
    args: [{ cluster: plan.former.ref, mode: 'planned', source: plan.primary.ref, approvalTimeoutSeconds: plan.approvalTimeoutSeconds }],
  });
  record.waiting(undefined);
  record.step('switch-back', 'done', `Switched back: ${plan.former.ref} is primary again (writes stopped ${r.writeDowntimeMs} ms, loss ${r.measuredRpoBytes} bytes, ` +
    `old primary's last checkpoint ${r.estimate?.sourceLsn}, replayed ${r.estimate?.standbyReplayedLsn}), ${plan.primary.ref} follows it.`,
    { sourceLsn: r.estimate?.sourceLsn, replayedLsn: r.estimate?.standbyReplayedLsn, rtoMs: r.rtoMs, writeDowntimeMs: r.writeDowntimeMs });
  return r;
}
