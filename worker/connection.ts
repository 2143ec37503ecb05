// Temporal connection settings the ecosystem's way: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
// TEMPORAL_TLS_*, TEMPORAL_PROFILE and the TOML profile file, through @temporalio/envconfig. The payload codec
// (DR_PAYLOAD_KEYS, worker/payload-codec.ts) is applied here, so drctl and the incident bridge encrypt and decrypt
// exactly as the workers do.
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import { payloadDataConverterFromEnv } from './payload-codec';

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
  // Read before connecting: a malformed key stops the caller before anything is sent.
  const dataConverter = payloadDataConverterFromEnv();
  const connection = await Connection.connect(cfg.connectionOptions);
  return new Client({ connection, namespace: cfg.namespace, dataConverter });
}

export async function connectWorker(): Promise<{ connection: NativeConnection; namespace: string }> {
  const cfg = connectConfig();
  return { connection: await NativeConnection.connect(cfg.connectionOptions), namespace: cfg.namespace };
}
