// The Temporal connection of drctl: the same environment configuration as the workers (worker/connection.ts:
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE) and the control
// queue with DR_TASK_QUEUE_PREFIX, as the workers serve it.
import type { Client } from '@temporalio/client';
import { connectClient, temporalTarget } from '../../../worker/connection';
import { PayloadKeyConfigError } from '../../../worker/payload-keys';
import { controlTaskQueue } from '../../../workflows/contracts/task-queues';
import { CliError } from './output';

export interface Temporal {
  client: Client;
  address: string;
  namespace: string;
  /** The control queue runbooks are started on. */
  taskQueue: string;
  close(): Promise<void>;
}

export function taskQueueFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return controlTaskQueue(env.DR_TASK_QUEUE_PREFIX ?? '');
}

function describeTarget(): { address: string; namespace: string } {
  try {
    return temporalTarget();
  } catch (err) {
    throw new CliError('connect', `the Temporal connection settings cannot be read: ${(err as Error).message}`);
  }
}

export async function connect(): Promise<Temporal> {
  const { address, namespace } = describeTarget();
  let client: Client;
  try {
    client = await connectClient();
  } catch (err) {
    // Not a connection problem: saying "cannot connect" would send the operator to check the network.
    if (err instanceof PayloadKeyConfigError) throw new CliError('connect', `the payload keys cannot be used: ${err.message}`);
    throw new CliError('connect',
      `cannot connect to Temporal at ${address} (namespace ${namespace}): ${(err as Error).message}; ` +
      'set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_* or TEMPORAL_PROFILE)',
      { temporal: { address, namespace } });
  }
  return { client, address, namespace, taskQueue: taskQueueFromEnv(), close: () => client.connection.close() };
}

const GRPC_UNAVAILABLE = 14;
const GRPC_UNAUTHENTICATED = 16;
const GRPC_PERMISSION_DENIED = 7;

/** A failure that means the server is gone or does not let us in (exit 3), rather than a runbook's failure. */
export function isConnectionFailure(err: unknown): boolean {
  const code = (err as { code?: number; cause?: { code?: number } })?.code ?? (err as { cause?: { code?: number } })?.cause?.code;
  if (code === GRPC_UNAVAILABLE || code === GRPC_UNAUTHENTICATED || code === GRPC_PERMISSION_DENIED) return true;
  return /namespace .* (is )?not found/i.test(String((err as Error)?.message ?? ''));
}

/** Runs a call that needs a worker (a query), giving up after `ms` (a closed run with no worker never answers). */
export async function withDeadline<T>(t: Temporal, ms: number, fn: () => Promise<T>): Promise<T> {
  return t.client.connection.withDeadline(Date.now() + ms, fn);
}
