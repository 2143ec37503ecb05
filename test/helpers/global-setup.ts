// Starts the real parts once for the whole suite: the project-built Temporal dev server on a free port, and the
// sandbox regions (S3, etcd per region, the demo source with a base backup) in the suite's own folder.
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startDevServer } from '../../scripts/lib/temporal-dev-server';
import { upRegions, ensureDemoSource, downRegions } from '../../scripts/lib/sandbox/regions';
import { stopDevServer } from '../../scripts/lib/temporal-dev-server';
import { startSandboxIssuer, stopSandboxIssuer } from '../../scripts/lib/sandbox/oidc-issuer';
import { testLayout, testBundlePath } from './test-env';
import { freeLoopbackPort as freePort } from '../../activities/walg/scratch-postgres';


export default async function globalSetup(): Promise<void> {
  const t0 = Date.now();
  const say = (line: string) => process.stderr.write(`[setup ${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
  process.env.DR_TEST_TEMPORAL_PORT = String(await freePort());
  const layout = testLayout();
  // A previous run may have left processes behind (a killed jest): stop them before wiping their folders.
  await stopDevServer(join(layout.dir, 'temporal')).catch(() => undefined);
  await downRegions(layout, () => undefined).catch(() => undefined);
  await stopSandboxIssuer(layout).catch(() => undefined);
  rmSync(layout.dir, { recursive: true, force: true });
  mkdirSync(layout.dir, { recursive: true });

  const temporal = await startDevServer({ dir: join(layout.dir, 'temporal'), port: layout.temporalPort });
  process.env.DR_TEST_TEMPORAL_ADDRESS = temporal.address;
  say(`Temporal dev server at ${temporal.address}`);

  // Each shard's own OpenID provider (its port moves with DR_TEST_PORT_BASE), before the sites file names it.
  const issuer = await startSandboxIssuer(layout);
  say(`OIDC issuer at ${issuer.issuer}`);

  const regions = await upRegions(layout, say);
  await ensureDemoSource(layout, regions, say);
  process.env.DR_SITES_FILE = layout.sitesFile;

  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows') });
  writeFileSync(testBundlePath(), code);
  say('workflow bundle built');
}
