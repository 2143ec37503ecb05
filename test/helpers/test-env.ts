// What the global setup hands to every test file, through the environment.
import { join, resolve } from 'node:path';
import { layoutAt, type SandboxLayout } from '../../scripts/lib/sandbox/layout';

export const REPO_ROOT = resolve(__dirname, '..', '..');

/** The suite's own sandbox: its own folder and ports, so a user's running sandbox is left alone. */
export function testLayout(): SandboxLayout {
  const dir = process.env.DR_TEST_DIR ?? join(REPO_ROOT, '.sandbox-test');
  const portBase = Number(process.env.DR_TEST_PORT_BASE ?? 25000);
  return layoutAt(dir, portBase, Number(process.env.DR_TEST_TEMPORAL_PORT ?? 0));
}

export function testTemporalAddress(): string {
  const a = process.env.DR_TEST_TEMPORAL_ADDRESS;
  if (!a) throw new Error('DR_TEST_TEMPORAL_ADDRESS is not set: run the suite through jest (its globalSetup starts Temporal)');
  return a;
}

export function testBundlePath(): string {
  return join(testLayout().dir, 'workflow-bundle.js');
}

/** Secret values created outside the sandbox's stores (e.g. the Kubernetes tests' Secrets), for the secrets audit. */
export function AUDIT_SECRETS_DIR(): string {
  return join(testLayout().dir, 'audit-secrets');
}
