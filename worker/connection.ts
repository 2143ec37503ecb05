// Temporal connection settings the ecosystem's way: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
// TEMPORAL_TLS_*, TEMPORAL_PROFILE and the TOML profile file, through @temporalio/envconfig.
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';

export interface TemporalTarget {
  address: string;
  namespace: string;
}

function connectConfig() {
  const cfg = loadClientConnectConfig({ profile: process.env.TEMPORAL_PROFILE });
  return { ...cfg, namespace: cfg.namespace ?? 'default' };
}

export function temporalTarget(): TemporalTarget {
  const cfg = connectConfig();
  return { address: cfg.connectionOptions.address ?? 'localhost:7233', namespace: cfg.namespace };
}

export async function connectClient(): Promise<Client> {
  const cfg = connectConfig();
  const connection = await Connection.connect(cfg.connectionOptions);
  return new Client({ connection, namespace: cfg.namespace });
}

export async function connectWorker(): Promise<{ connection: NativeConnection; namespace: string }> {
  const cfg = connectConfig();
  return { connection: await NativeConnection.connect(cfg.connectionOptions), namespace: cfg.namespace };
}
