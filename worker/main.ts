// Worker entry: `npm run worker` (or `tsx worker/main.ts`). Configured by Temporal env config and DR_* variables
// (see README "Configuration").
import { createDriverFactory } from '../activities/sites';
import { loadWorkerConfig } from './config';
import { connectWorker } from './connection';
import { payloadCodecFromEnv } from './payload-codec';
import { createRunbookWorkers, runAll } from './workers';

async function main(): Promise<void> {
  // First: a worker with a malformed payload key must not start, not even connect (docs/OPERATIONS.md).
  const codec = payloadCodecFromEnv();
  const config = loadWorkerConfig();
  const { connection, namespace } = await connectWorker();
  const workers = await createRunbookWorkers({
    connection,
    namespace,
    deps: { sites: config.sites, driverFor: createDriverFactory(config.sites) },
    servedSites: config.servedSites,
    serveControl: config.serveControl,
    taskQueuePrefix: config.taskQueuePrefix,
    dataConverter: codec ? { payloadCodecs: [codec] } : undefined,
    workflowBundle: config.workflowBundlePath ? { codePath: config.workflowBundlePath } : undefined,
  });
  console.log(
    `worker ready: namespace ${namespace}, queues ${workers.map((w) => w.options.taskQueue).join(', ')}, sites file ${config.sites.path}, ` +
    `payloads ${codec ? `encrypted with key ${codec.encryptingKeyId}` : 'in clear (no DR_PAYLOAD_KEYS)'}`,
  );
  await runAll(workers);
}

main().catch((err) => {
  console.error(`worker failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
