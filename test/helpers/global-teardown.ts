// Stops everything the global setup started. Data stays in .sandbox-test for a post-mortem; the next run wipes it.
import { join } from 'node:path';
import { downRegions } from '../../scripts/lib/sandbox/regions';
import { stopDevServer } from '../../scripts/lib/temporal-dev-server';
import { stopSandboxIssuer } from '../../scripts/lib/sandbox/oidc-issuer';
import { testLayout } from './test-env';

export default async function globalTeardown(): Promise<void> {
  if (process.env.DR_TEST_KEEP_RUNNING === '1') return;
  const layout = testLayout();
  await downRegions(layout, () => undefined);
  await stopDevServer(join(layout.dir, 'temporal'));
  await stopSandboxIssuer(layout);
}
