// The fencing epoch against real parts: planned promotions back and forth between one pair (real Patroni, etcd,
// S3, Temporal) with a writer that follows the primary. An activity of an older run, replayed with the input it had
// then, must be refused by the cluster's stored epoch; and the round trips must leave no trace (same system, same
// archive prefix, no rewind, no standby_cluster on the primary, no pause in the DCS), with epochs strictly increasing.
import { readFileSync } from 'node:fs';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { startRunbook } from '../../scripts/lib/runbook-client';
import { getJournalQuery } from '../../workflows/contracts/journal';
import { RUNBOOK_NAMES, type PromoteInput, type PromoteResult } from '../../workflows/contracts/runbooks';
import { createSiteActivities } from '../../activities';
import { createDriverFactory } from '../../activities/sites';
import { loadSites } from '../../activities/sites/sites-file';
import { withRunbookWorkers, type RunbookHarness } from '../helpers/runbook-workers';
import { approveWhenAsked } from '../helpers/approvals';
import { deleteCluster, driverOf, roleOf, sql } from '../helpers/clusters';
import { createSource, createStandbyPair, deleteStandbyPair, type StandbyPair } from '../helpers/standby-pair';
import { startWriter, type Writer } from '../helpers/writer';
import { testLayout } from '../helpers/test-env';
import { saveHistory } from '../helpers/histories';

const log = (msg: string) => process.stdout.write(`[fencing-epoch] ${msg}\n`);

const startPromote = (h: RunbookHarness, input: PromoteInput) =>
  startRunbook(h.client, { workflowType: 'promote', runbook: RUNBOOK_NAMES.promote, cluster: input.cluster, input, taskQueue: h.taskQueue });

/** A planned switchover to `to` (from `from`), approved as a human would, with its journal. */
async function switchOver(h: RunbookHarness, to: string, from: string): Promise<{ handle: WorkflowHandle; result: PromoteResult }> {
  const handle = await startPromote(h, { cluster: to, source: from, mode: 'planned', takeBackup: false, approvalTimeoutSeconds: 600 });
  await approveWhenAsked(handle, 'alice', 'CHG-EPOCH');
  const result = (await handle.result()) as PromoteResult;
  log(`${from} -> ${to}: fence ${result.fence}, epoch ${String((result as { fencingEpoch?: number }).fencingEpoch)}, ` +
    `writes stopped ${result.writeDowntimeMs} ms, loss ${result.measuredRpoBytes} bytes`);
  return { handle, result };
}

/** The inputs a run scheduled its activities with, read back from its history, by activity type. */
async function scheduledInputs(handle: WorkflowHandle): Promise<Record<string, Array<Record<string, unknown>>>> {
  const history = await handle.fetchHistory();
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const e of history.events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (!a?.activityType?.name) continue;
    const payload = a.input?.payloads?.[0];
    (out[a.activityType.name] ??= []).push(payload ? defaultPayloadConverter.fromPayload(payload) : {});
  }
  return out;
}

async function systemIdentifier(ref: string): Promise<string> {
  return (await sql<{ id: string }>(ref, 'SELECT system_identifier::text AS id FROM pg_control_system()'))[0].id;
}

async function dynamicConfig(ref: string): Promise<Record<string, unknown>> {
  const { driver, cluster } = driverOf(ref);
  return (await (await fetch(`${driver.region.patroniUrl(cluster)}/config`)).json()) as Record<string, unknown>;
}

async function storedEpoch(ref: string): Promise<number | null> {
  const { driver, cluster } = driverOf(ref);
  return (await driver.readEpoch(cluster)).epoch;
}

/** Does a real INSERT on the cluster's leader succeed? */
async function takesWrites(ref: string, id: number): Promise<boolean> {
  return sql(ref, 'INSERT INTO public.writes (id) VALUES ($1)', [id]).then(() => true, () => false);
}

describe('fencing epoch', () => {
  let pair: StandbyPair;
  let writer: Writer;
  const epochs: number[] = [];
  const journals: Array<Array<{ step: string; facts?: Record<string, unknown> }>> = [];
  let systemId: string;
  let identity: { a: { uid: string; walPrefix: string }; b: { uid: string; walPrefix: string } };
  const record = async (handle: WorkflowHandle, result: PromoteResult) => {
    epochs.push((result as { fencingEpoch?: number }).fencingEpoch as number);
    journals.push(await handle.query(getJournalQuery));
  };

  beforeAll(async () => {
    pair = await createStandbyPair('ep');
    systemId = await systemIdentifier(pair.source);
    const facts = async (ref: string) => {
      const { driver, cluster } = driverOf(ref);
      const f = (await driver.describeCluster(cluster))!;
      return { uid: f.uid, walPrefix: f.archive.walPrefix };
    };
    identity = { a: await facts(pair.source), b: await facts(pair.standby) };
    writer = await startWriter([pair.source, pair.standby]);
  });

  afterAll(async () => {
    await writer?.stop();
    if (pair) await deleteStandbyPair(pair);
  });

  it('an old run\'s fence, unfence and demote, replayed after a switchback, are refused and change nothing', async () => {
    const [a, b] = [pair.source, pair.standby];
    await withRunbookWorkers(async (h) => {
      const first = await switchOver(h, b, a);
      await record(first.handle, first.result);
      const old = await scheduledInputs(first.handle);
      const second = await switchOver(h, a, b);
      await record(second.handle, second.result);
      // A run with the fencing-epoch marker, for the replay audit.
      await saveHistory(second.handle, 'promote.planned-epoch');
      expect(await roleOf(a)).toBe('primary');
      expect(await roleOf(b)).toBe('standby_leader');

      // The worker's own activities, on the sandbox's sites, run as a worker would run them.
      const sites = loadSites(testLayout().sitesFile);
      const acts = createSiteActivities({ sites, driverFor: createDriverFactory(sites) });
      // A planned run stops the old primary's writes with siteStopWritesForSwitchover (Patroni 4: its demote-cluster);
      // runs from before it, and an unplanned one, fence with siteFenceCluster under the same ref and epoch.
      const stopInput = old.siteStopWritesForSwitchover?.[0] as unknown as Parameters<typeof acts.siteStopWritesForSwitchover>[0] | undefined;
      const fenceInput = (stopInput ? { ref: stopInput.ref, epoch: stopInput.epoch } : old.siteFenceCluster[0]) as { ref: string; epoch?: number };
      const demoteInput = old.siteDemoteToStandby[0] as unknown as Parameters<typeof acts.siteDemoteToStandby>[0];
      // What the first run would have sent to lift its fence (rejection, timeout): the fence's ref and epoch.
      const unfenceInput = { ...fenceInput };
      log(`replaying run 1's fence ${JSON.stringify(fenceInput)}, unfence, demote ${JSON.stringify({ ref: demoteInput.ref, epoch: (demoteInput as { epoch?: number }).epoch })}`);
      // All of them are tried before anything is asserted, so a step that acts shows what it did to the pair.
      const outcomes: Array<{ name: string; err: Error | null; result?: unknown }> = [];
      for (const [name, call] of [
        ['siteUnfenceCluster', () => acts.siteUnfenceCluster(unfenceInput)],
        ['siteFenceCluster', () => acts.siteFenceCluster(fenceInput)],
        ...(stopInput ? [
          ['siteStopWritesForSwitchover', () => acts.siteStopWritesForSwitchover(stopInput)],
          ['siteUndoNativeDemotion', () => acts.siteUndoNativeDemotion(unfenceInput)],
        ] as const : []),
        ['siteDemoteToStandby', () => acts.siteDemoteToStandby(demoteInput)],
      ] as const) {
        outcomes.push(await new MockActivityEnvironment().run(call as () => Promise<unknown>).then(
          (result) => ({ name, err: null, result }),
          (err: Error) => ({ name, err }),
        ));
      }
      log(outcomes.map((o) => (o.err ? `${o.name} refused: ${o.err.name}: ${o.err.message}` : `${o.name} ACTED: ${JSON.stringify(o.result)}`)).join('\n'));

      // Nothing changed: a is still the only writable side.
      expect(await roleOf(a)).toBe('primary');
      expect(await roleOf(b)).toBe('standby_leader');
      expect(await takesWrites(a, -101)).toBe(true);
      expect(await takesWrites(b, -102)).toBe(false);
      for (const o of outcomes) {
        expect({ name: o.name, refusedWith: o.err?.name }).toEqual({ name: o.name, refusedWith: 'StaleEpochError' });
        expect(o.err!.message).toContain(`fencing epoch ${epochs[1]}, newer than epoch ${epochs[0]}`);
      }
      expect(await storedEpoch(a)).toBe(epochs[1]);
    });
  });

  it('round trips A->B->A->B twice: no reclone, no stale keys, epochs strictly increasing and journaled', async () => {
    const [a, b] = [pair.source, pair.standby];
    await withRunbookWorkers(async (h) => {
      // Two switchovers ran in the test above (A->B, B->A); four more make A->B->A->B twice.
      for (const [to, from] of [[b, a], [a, b], [b, a], [a, b]]) {
        const { handle, result } = await switchOver(h, to, from);
        await record(handle, result);
        expect(result).toMatchObject({ fence: 'CONFIRMED', measuredRpoBytes: 0 });
      }
    });
    await writer.stop();
    log(`epochs ${JSON.stringify(epochs)}; writer acknowledged ${writer.acknowledged.length}, longest gap ${writer.longestGapMs()} ms`);

    expect(epochs).toHaveLength(6);
    for (let i = 1; i < epochs.length; i++) expect(epochs[i]).toBeGreaterThan(epochs[i - 1]);
    journals.forEach((j, i) => {
      const step = j.find((e) => e.step === 'fencing-epoch');
      expect(step?.facts).toMatchObject({ epoch: epochs[i] });
    });
    expect(await storedEpoch(a)).toBe(epochs[5]);
    expect(await storedEpoch(b)).toBe(epochs[5]);

    // No reclone: the same system on both sides, the same incarnation (uid) and archive prefix, no rewind.
    expect(await roleOf(a)).toBe('primary');
    expect(await roleOf(b)).toBe('standby_leader');
    expect(await systemIdentifier(a)).toBe(systemId);
    expect(await systemIdentifier(b)).toBe(systemId);
    for (const [ref, before] of [[a, identity.a], [b, identity.b]] as const) {
      const { driver, cluster } = driverOf(ref);
      const f = (await driver.describeCluster(cluster))!;
      expect({ uid: f.uid, walPrefix: f.archive.walPrefix }).toEqual(before);
      for (const m of driver.region.getCluster(cluster)!.members) {
        const lines = readFileSync(driver.region.memberPaths(cluster, m.name).logFile, 'utf8').split('\n');
        // Nor a fenced primary restarted read-write on resume (Patroni 4's "starting primary after failure"), which
        // writes past the fork and so needs the rewind.
        expect(lines.filter((l) => /running pg_rewind|reinitializ|starting primary after failure/i.test(l))).toEqual([]);
      }
    }
    // No stale keys: the primary has no standby_cluster, neither side is left paused.
    const [ca, cb] = [await dynamicConfig(a), await dynamicConfig(b)];
    expect(ca.standby_cluster ?? null).toBeNull();
    expect(cb.standby_cluster).toBeTruthy();
    expect(ca.pause ?? false).toBe(false);
    expect(cb.pause ?? false).toBe(false);

    // Every acknowledged write is on the final primary.
    const present = new Set((await sql<{ id: string }>(a, 'SELECT id FROM public.writes')).map((r) => Number(r.id)));
    expect(writer.acknowledged.filter((id) => !present.has(id))).toEqual([]);
  });
});

describe('fencing epoch of a deleted cluster', () => {
  it('goes with the cluster: nothing is left in etcd for a new cluster of the same name', async () => {
    const ref = 'eu/acid-epdel';
    await createSource(ref, { members: 1 });
    const { driver, cluster } = driverOf(ref);
    try {
      expect((await driver.claimEpoch(cluster, 4)).epoch).toBe(4);
      expect(await storedEpoch(ref)).toBe(4);
    } finally {
      await deleteCluster(ref);
    }
    expect(await storedEpoch(ref)).toBeNull();
  });
});
