import { createCopyClusterSecrets } from '../../activities/secrets/copy-cluster-secrets';
import type { ActivityDeps } from '../../activities/deps';
import type { SecretValue, SiteDriver } from '../../activities/sites/site-driver';
import { PreconditionFailedError } from '../../workflows/contracts/errors';
import { parseApprovalPolicy } from '../../activities/identity/approval-policy';

/** A secret store in memory, behind the SiteDriver methods the activity uses. */
function fakeSite(site: string, store: Record<string, Record<string, SecretValue>>): SiteDriver {
  return {
    site,
    kind: 'local',
    readSecret: async (c: string, u: string) => store[c]?.[u] ?? null,
    writeSecret: async (c: string, u: string, v: SecretValue) => {
      store[c] = { ...(store[c] ?? {}), [u]: v };
    },
    listSecretUsers: async (c: string) => Object.keys(store[c] ?? {}).sort(),
  } as unknown as SiteDriver;
}

function deps(stores: Record<string, Record<string, Record<string, SecretValue>>>): ActivityDeps {
  return { sites: { path: 'test', sites: {}, approvals: parseApprovalPolicy(undefined, 'no sites file') }, driverFor: (s: string) => fakeSite(s, stores[s]) };
}

const pw = (p: string, u = 'x') => ({ username: u, password: p });

describe('secretsCopyClusterSecrets', () => {
  it('copies every user under the target name and returns names only', async () => {
    const stores = { eu: { 'acid-a': { postgres: pw('s3cr3t-pg', 'postgres'), standby: pw('s3cr3t-sb', 'standby'), app: pw('s3cr3t-app', 'app') } }, us: {} as Record<string, Record<string, SecretValue>> };
    const result = await createCopyClusterSecrets(deps(stores))({ from: 'eu/acid-a', to: 'us/acid-b' });
    expect(result).toEqual({ copied: ['app', 'postgres', 'standby'], unchanged: [], dryRun: false });
    expect(stores.us['acid-b']).toEqual(stores.eu['acid-a']);
    expect(JSON.stringify(result)).not.toMatch(/s3cr3t/);
  });

  it('reports unchanged users on a rerun and overwrites a stale value', async () => {
    const stores = {
      eu: { 'acid-a': { postgres: pw('p1'), standby: pw('s1') } },
      us: { 'acid-b': { postgres: pw('p1'), standby: pw('old') } },
    };
    const result = await createCopyClusterSecrets(deps(stores))({ from: 'eu/acid-a', to: 'us/acid-b' });
    expect(result).toEqual({ copied: ['standby'], unchanged: ['postgres'], dryRun: false });
    expect(stores.us['acid-b'].standby).toEqual(pw('s1'));
  });

  it('writes nothing in a dry run', async () => {
    const stores = { eu: { 'acid-a': { postgres: pw('p1'), standby: pw('s1') } }, us: {} as Record<string, Record<string, SecretValue>> };
    const result = await createCopyClusterSecrets(deps(stores))({ from: 'eu/acid-a', to: 'us/acid-b', dryRun: true });
    expect(result.copied).toEqual(['postgres', 'standby']);
    expect(stores.us).toEqual({});
  });

  it('refuses before writing anything when the source lacks the replication user', async () => {
    const stores = { eu: { 'acid-a': { postgres: pw('p1'), app: pw('a1') } }, us: {} as Record<string, Record<string, SecretValue>> };
    const copy = createCopyClusterSecrets(deps(stores));
    await expect(copy({ from: 'eu/acid-a', to: 'us/acid-b' })).rejects.toThrow(PreconditionFailedError);
    await expect(copy({ from: 'eu/acid-a', to: 'us/acid-b' })).rejects.toThrow(/no "standby" credentials/);
    expect(stores.us).toEqual({});
  });
});
