// `scripts/incident-bridge [--config <file>]`: serves the incident-tool bridge (see server.ts) until SIGTERM/SIGINT.
// Config: --config, or DR_BRIDGE_CONFIG. Temporal: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
// TEMPORAL_TLS_*, TEMPORAL_PROFILE (worker/connection.ts). Runbooks are started on the control queue with the
// worker's DR_TASK_QUEUE_PREFIX, so the bridge starts them where this deployment's workers listen.
import { Command } from 'commander';
import { connectClient, temporalTarget } from '../../../worker/connection';
import { controlTaskQueue } from '../../../workflows/contracts/task-queues';
import { BridgeConfigError, loadBridgeConfig } from './config';
import { buildBridge, GENERIC_ROUTE, PAGERDUTY_ROUTE } from './server';

async function main(): Promise<void> {
  const program = new Command('incident-bridge')
    .description('HTTP bridge for incident tools: approve, reject or start DR runbooks')
    .option('-c, --config <file>', 'the bridge config (JSON)', process.env.DR_BRIDGE_CONFIG)
    .parse(process.argv);
  const { config: configPath } = program.opts<{ config?: string }>();
  if (!configPath) throw new BridgeConfigError('no config: pass --config <file> or set DR_BRIDGE_CONFIG');
  const config = loadBridgeConfig(configPath);
  // The same prefix the workers read (worker/config.ts): this deployment's queues, never another's.
  const taskQueue = controlTaskQueue(process.env.DR_TASK_QUEUE_PREFIX ?? '');
  const client = await connectClient();
  const app = buildBridge({ client, config, taskQueue, logger: { level: process.env.DR_BRIDGE_LOG_LEVEL ?? 'info' } });
  const address = await app.listen({ host: config.listen.host, port: config.listen.port });
  const target = temporalTarget();
  app.log.info(`incident bridge on ${address}: POST ${GENERIC_ROUTE} (${config.callers.size} caller keys)` +
    `${config.pagerduty ? `, POST ${PAGERDUTY_ROUTE} (${config.pagerduty.subscriptions.length} subscriptions)` : ''}; ` +
    `Temporal ${target.address} namespace ${target.namespace}, task queue ${taskQueue}; audit ${config.auditFile}, replay store ${config.replayStoreDir}`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info(`${signal}: stopping`);
    await app.close();
    await client.connection.close();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(`incident-bridge: ${err instanceof BridgeConfigError ? err.message : (err as Error).stack ?? String(err)}`);
  process.exit(1);
});
