// `scripts/sandbox up|status|down|reset`: two real regions on one machine, Temporal with its UI, a worker per
// region, and a standby of the demo cluster provisioned by the provision-standby runbook.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { devServerRunning, startDevServer, stopDevServer } from '../temporal-dev-server';
import { followRunbook, RunbookAlreadyRunningError, startRunbook } from '../runbook-client';
import { RUNBOOK_NAMES, runbookWorkflowId, type ProvisionStandbyResult } from '../../../workflows/contracts/runbooks';
import { REGIONS, userLayout, type SandboxLayout } from './layout';
import { downRegions, ensureDemoSource, openRegions, s3Running, upRegions } from './regions';
import { buildWorkflowBundle, startWorker, stopWorker, workersRunning } from './workers';
import { drCycle } from './dr-cycle';
import { regionFailoverDemo } from './region-failover';
import { sandboxIssuerRunning, sandboxIssuerUrl, sandboxUsersFile, startSandboxIssuer, stopSandboxIssuer } from './oidc-issuer';

const say = (line: string) => console.log(line);

async function up(layout: SandboxLayout): Promise<void> {
  const t0 = Date.now();
  const issuer = await startSandboxIssuer(layout);
  say(`OIDC issuer (oidc-provider) ${issuer.changed ? 'started' : 'running'} at ${issuer.issuer}; users and passwords in ${sandboxUsersFile(layout)}`);
  const regions = await upRegions(layout, say);
  await ensureDemoSource(layout, regions, say);
  const temporal = await startDevServer({ dir: join(layout.dir, 'temporal'), port: layout.temporalPort, uiPort: layout.uiPort });
  say(`Temporal dev server ${temporal.changed ? 'started' : 'running'} at ${temporal.address} (state in ${layout.dir}/temporal/temporal.db)`);
  const bundle = await buildWorkflowBundle(layout);
  for (const region of REGIONS) {
    const started = await startWorker(layout, region, bundle);
    say(`worker-${region} ${started ? 'started' : 'running'} (queues dr-control, dr-site-${region})`);
  }
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  const input = { source: layout.demo.source, target: layout.demo.target, method: 'both' as const };
  say(`provision-standby ${input.source} -> ${input.target} (${input.method}):`);
  let handle;
  try {
    handle = await startRunbook(client, {
      workflowType: 'provisionStandby', runbook: RUNBOOK_NAMES.provisionStandby, cluster: input.target, input,
    });
  } catch (err) {
    if (!(err instanceof RunbookAlreadyRunningError)) throw err;
    say(`  already running: following ${err.workflowId}`);
    handle = client.workflow.getHandle(err.workflowId);
  }
  const result = await followRunbook<ProvisionStandbyResult>(handle, (e) => say(`  [${e.phase}] ${e.step}: ${e.outcome} — ${e.message}`));
  await client.connection.close();
  const ui = layout.uiPort ? `http://127.0.0.1:${layout.uiPort}` : '(headless)';
  say('');
  say(`Sandbox up in ${Math.round((Date.now() - t0) / 1000)}s. Standby ${result.target} replays ${result.source} (replayed ${result.replayedLsn}, lag ${result.lagBytesAtEnd ?? '?'} bytes).`);
  say(`Temporal UI: ${ui}/namespaces/default/workflows/${encodeURIComponent(runbookWorkflowId(RUNBOOK_NAMES.provisionStandby, input.target))}`);
  say(`Sites file:  ${layout.sitesFile}`);
  say('Try next:');
  say('  ./scripts/sandbox status                 every process, port and Patroni role');
  say(`  export TEMPORAL_ADDRESS=127.0.0.1:${layout.temporalPort} DR_SITES_FILE=${layout.sitesFile}`);
  say('  ./scripts/drctl login --user alice       an ID token from the sandbox issuer (alice, bob, carol, dana, mallory)');
  if (layout.uiPort) say('  open the UI above: the run, its journal (Queries: getJournal) and its search attributes');
  const t = `${join(__dirname, '..', '..', '..', '.tools', 'bin', 'temporal')} --address ${temporal.address}`;
  say(`  ${t} workflow start --task-queue dr-control --type promote --workflow-id promote/${input.target} --input '{"cluster":"${input.target}","mode":"planned"}'`);
  say(`  ${t} workflow query --workflow-id promote/${input.target} --name getPendingApproval`);
  say(`  ./scripts/drctl login --user alice && ./scripts/drctl approve promote/${input.target} --ticket CHG-1`);
  say('                                           approve as alice: an ID token bound to the open gate (a typed name proves nothing)');
  say('  ./scripts/sandbox dr-cycle               the whole disaster: eu lost, promote us, failback, switchback');
  say('  ./scripts/sandbox dr-cycle --rewind-impossible   the same with eu diverged and its rewind WAL gone: reseed');
  say('  ./scripts/sandbox region-failover        a fleet of 4 clusters, eu lost, all evacuated to us with one decision (alice and bob)');
  say('  ./scripts/sandbox down | reset           stop everything (data kept) | wipe it');
}

async function status(layout: SandboxLayout, json: boolean): Promise<void> {
  const regions = openRegions(layout);
  const report = {
    dir: layout.dir,
    s3: { running: s3Running(layout), endpoint: `http://127.0.0.1:${layout.s3Port}` },
    temporal: { running: devServerRunning(join(layout.dir, 'temporal')), address: `127.0.0.1:${layout.temporalPort}`, ui: layout.uiPort ? `http://127.0.0.1:${layout.uiPort}` : null },
    workers: workersRunning(layout),
    oidcIssuer: { running: sandboxIssuerRunning(layout), issuer: sandboxIssuerUrl(layout) },
    regions: {} as Record<string, unknown>,
  };
  for (const region of REGIONS) {
    const d = regions.drivers[region];
    const clusters = [];
    for (const c of d.region.listClusters()) {
      const facts = await d.describeCluster(c.name);
      clusters.push({
        cluster: `${region}/${c.name}`,
        standbyOf: facts?.standbySource ?? null,
        members: c.members.map((m) => {
          const seen = facts?.members.find((x) => x.name === m.name);
          return { name: m.name, pgPort: m.pgPort, restPort: m.restPort, role: seen?.role ?? 'unknown', state: seen?.state ?? 'unreachable' };
        }),
      });
    }
    report.regions[region] = { etcd: { healthy: await d.region.etcdHealthy(), port: d.cfg.etcd.clientPort }, clusters };
  }
  if (json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const mark = (b: boolean) => (b ? 'running' : 'stopped');
  say(`sandbox in ${layout.dir}`);
  say(`  S3        ${mark(report.s3.running)}  ${report.s3.endpoint}`);
  say(`  oidc      ${mark(report.oidcIssuer.running)}  ${report.oidcIssuer.issuer}`);
  say(`  temporal  ${mark(report.temporal.running)}  ${report.temporal.address}  UI ${report.temporal.ui ?? '-'}`);
  for (const [r, ok] of Object.entries(report.workers)) say(`  worker-${r} ${mark(ok)}`);
  for (const [region, info] of Object.entries(report.regions) as Array<[string, { etcd: { healthy: boolean; port: number }; clusters: Array<{ cluster: string; standbyOf: unknown; members: Array<{ name: string; pgPort: number; restPort: number; role: string; state: string }> }> }]>) {
    say(`  region ${region}: etcd ${info.etcd.healthy ? 'healthy' : 'down'} :${info.etcd.port}`);
    for (const c of info.clusters) {
      const from = c.standbyOf as { sourceRef?: string; walPrefix?: string; host?: string; port?: number } | null;
      const via = from ? [from.walPrefix ? `archive ${from.walPrefix}` : '', from.host ? `streaming ${from.host}:${from.port}` : ''].filter(Boolean).join(' + ') : '';
      say(`    ${c.cluster}${from ? `  standby of ${from.sourceRef ?? '?'} (${via})` : ''}`);
      for (const m of c.members) say(`      ${m.name.padEnd(14)} pg :${m.pgPort}  rest :${m.restPort}  ${m.role} (${m.state})`);
    }
  }
}

async function down(layout: SandboxLayout): Promise<void> {
  for (const region of REGIONS) say(`worker-${region}: ${(await stopWorker(layout, region)) ? 'stopped' : 'was not running'}`);
  say(`temporal: ${(await stopDevServer(join(layout.dir, 'temporal'))).changed ? 'stopped' : 'was not running'}`);
  await downRegions(layout, say);
  say(`OIDC issuer: ${(await stopSandboxIssuer(layout)).changed ? 'stopped' : 'was not running'}`);
}

async function main(argv: string[]): Promise<void> {
  const layout = userLayout();
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up':
      return up(layout);
    case 'status':
      return status(layout, rest.includes('--json'));
    case 'down':
      return down(layout);
    case 'dr-cycle': {
      const regions = openRegions(layout);
      const bundle = await buildWorkflowBundle(layout);
      const client = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${layout.temporalPort}` }) });
      await drCycle(layout, regions, client, bundle, say, { rewindImpossible: rest.includes('--rewind-impossible') });
      await client.connection.close();
      return;
    }
    case 'region-failover': {
      const i = rest.indexOf('--clusters');
      const clusters = i >= 0 ? Number(rest[i + 1]) : 4;
      if (!Number.isInteger(clusters) || clusters < 1 || clusters > 20) {
        say('sandbox region-failover: --clusters must be a whole number from 1 to 20 (each is a real Postgres in each region)');
        process.exitCode = 2;
        return;
      }
      const regions = openRegions(layout);
      const bundle = await buildWorkflowBundle(layout);
      const client = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${layout.temporalPort}` }) });
      await regionFailoverDemo(layout, regions, client, bundle, say, { clusters });
      await client.connection.close();
      return;
    }
    case 'reset':
      await down(layout);
      rmSync(layout.dir, { recursive: true, force: true });
      say(`wiped ${layout.dir}`);
      return;
    default:
      say('usage: scripts/sandbox up | status [--json] | dr-cycle [--rewind-impossible] | region-failover [--clusters N] | down | reset');
      process.exitCode = cmd ? 2 : 0;
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`sandbox: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
