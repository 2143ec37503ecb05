// Where the sandbox keeps everything and which loopback ports it uses. The user's sandbox and the test suite's
// use different folders and ports, so tests never disturb a running sandbox.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LocalSiteConfig, SitesFile } from '../../../activities/sites/sites-file';
import type { IdentityConfig } from '../../../workflows/contracts/identity';
import { writeFileAtomic } from '../../../activities/sites/local/fs-util';

export const REGIONS = ['eu', 'us'] as const;
export type RegionName = (typeof REGIONS)[number];

export interface SandboxLayout {
  dir: string;
  /** First port of the block: eu uses base+0..999, us base+1000..1999, S3 base+4000, OIDC issuer base+4100. */
  portBase: number;
  temporalPort: number;
  /** Web UI port; undefined runs headless (tests). */
  uiPort?: number;
  s3Port: number;
  /** The sandbox's OpenID Connect provider (stands in for the company IdP). */
  oidcPort: number;
  sitesFile: string;
  credentialsFile: string;
  /** Demo source cluster and the standby the sandbox provisions. */
  demo: { source: string; target: string };
}

const num = (v: string | undefined, d: number) => (v && /^\d+$/.test(v) ? Number(v) : d);

export function userLayout(env: NodeJS.ProcessEnv = process.env): SandboxLayout {
  const dir = resolve(env.DR_SANDBOX_DIR ?? join(__dirname, '..', '..', '..', '.sandbox'));
  const portBase = num(env.DR_SANDBOX_PORT_BASE, 15000);
  return layoutAt(dir, portBase, num(env.DR_SANDBOX_TEMPORAL_PORT, 7233), num(env.DR_SANDBOX_UI_PORT, 8233));
}

export function layoutAt(dir: string, portBase: number, temporalPort: number, uiPort?: number): SandboxLayout {
  return {
    dir,
    portBase,
    temporalPort,
    uiPort,
    s3Port: portBase + 4000,
    oidcPort: portBase + 4100,
    sitesFile: join(dir, 'sites.json'),
    credentialsFile: join(dir, 'aws', 'credentials'),
    demo: { source: 'eu/acid-demo', target: 'us/acid-demo' },
  };
}

export function siteConfigFor(layout: SandboxLayout, region: RegionName): LocalSiteConfig {
  const base = layout.portBase + REGIONS.indexOf(region) * 1000;
  return {
    kind: 'local',
    dataDir: join('regions', region),
    etcd: { clientPort: base + 379, peerPort: base + 380 },
    memberPorts: { first: base + 400, last: base + 599 },
    s3: {
      bucket: `dr-${region}`,
      scopePrefix: 'spilo',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${layout.s3Port}`,
      forcePathStyle: true,
      profile: 'sandbox',
      credentialsFile: 'aws/credentials',
    },
    secretStore: { dir: join('regions', region, 'secrets') },
    runAs: 'postgres',
  };
}

/**
 * The sandbox's approvals policy: the sandbox issuer's dr-approvers decide every gate, dba-leads may reject. Typed
 * names are refused here as in production: the demos, drctl and the tests decide with ID tokens of the sandbox's
 * users (only the incident bridge's tests run workers with a sites file that still accepts them).
 */
export const SANDBOX_APPROVALS = {
  rules: [
    { name: 'dr-approvers decide every gate', groups: ['dr-approvers'] },
    { name: 'dba-leads may stop a run', decisions: ['reject'], groups: ['dba-leads'] },
  ],
};

/** The client id drctl logs in with; it is the ID token's audience. */
export const SANDBOX_OIDC_CLIENT_ID = 'drctl';

export function sandboxIssuerUrl(layout: SandboxLayout): string {
  return `http://127.0.0.1:${layout.oidcPort}`;
}

/** Who may sign approvals in the sandbox: its own issuer only. */
export function sandboxIdentityConfig(layout: SandboxLayout): IdentityConfig {
  return { issuers: [{ issuer: sandboxIssuerUrl(layout), audience: SANDBOX_OIDC_CLIENT_ID, groupsClaim: 'groups' }] };
}

/** The sites file the sandbox writes for itself: references only (an AWS profile, folders, the issuer's URL). */
export function writeSitesFile(layout: SandboxLayout): void {
  const file: SitesFile = {
    sites: Object.fromEntries(REGIONS.map((r) => [r, siteConfigFor(layout, r)])),
    identity: sandboxIdentityConfig(layout),
    approvals: SANDBOX_APPROVALS,
  };
  writeFileAtomic(layout.sitesFile, `${JSON.stringify(file, null, 2)}\n`, 0o644);
}

/** The sandbox S3 account, generated once and kept in a 0600 shared credentials file (profile `sandbox`). */
export function ensureS3Credentials(layout: SandboxLayout): void {
  if (existsSync(layout.credentialsFile) && /\[sandbox\]/.test(readFileSync(layout.credentialsFile, 'utf8'))) return;
  mkdirSync(join(layout.dir, 'aws'), { recursive: true, mode: 0o700 });
  const key = `SBX${randomBytes(8).toString('hex').toUpperCase()}`;
  const secret = randomBytes(24).toString('base64url');
  writeFileAtomic(layout.credentialsFile, `[sandbox]\naws_access_key_id = ${key}\naws_secret_access_key = ${secret}\n`, 0o600);
}
