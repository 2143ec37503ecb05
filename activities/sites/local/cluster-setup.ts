// The files a local cluster runs from (WAL-G env + wrappers, one Patroni config per member) and the
// application roles of a source cluster. Both idempotent: they report whether anything changed.
import { dirname, join } from 'node:path';
import { Client, type ClientConfig } from 'pg';
import type { LocalSiteConfig } from '../sites-file';
import { PreconditionFailedError } from '../../../workflows/contracts/errors';
import { clusterDir, type LocalClusterInfo } from './cluster-files';
import { requireStandbySecrets } from './cluster-checks';
import { ensureTraversable, mkdirOwned, writeFileAtomic } from './fs-util';
import { buildPatroniConfig, type MemberPaths } from './patroni-config';
import { lookupUser } from './processes';
import type { SecretStore } from './secret-store';
import { pgBinDir, walgBin } from './tools';
import { walgEnv, walgScriptPaths, writeWalgFiles } from './walg-env';

export class ClusterSetup {
  constructor(
    private readonly cfg: LocalSiteConfig,
    private readonly secrets: SecretStore,
    private readonly runAs: string,
    private readonly pathsOf: (cluster: string, member: string) => MemberPaths,
    private readonly pgConfig: (cluster: string) => Promise<ClientConfig>,
  ) {}

  /** Writes WAL-G env files, wrappers and every member's Patroni config; true if any file changed. */
  async materialize(info: LocalClusterInfo): Promise<boolean> {
    const user = lookupUser(this.runAs);
    const owner = { uid: user.uid, gid: user.gid };
    const dir = clusterDir(this.cfg.dataDir, info.name);
    mkdirOwned(dir, 0o755, owner);
    mkdirOwned(join(dir, 'walg'), 0o700, owner);
    ensureTraversable(dir, user);
    const fa = info.standby?.fromArchive;
    if (info.archivePrefix || fa) ensureTraversable(walgBin(), user);
    let changed = writeWalgFiles(
      dir,
      owner,
      info.archivePrefix ? await walgEnv(this.cfg.s3, info.archivePrefix) : null,
      fa ? { env: await walgEnv(fa.s3, fa.walPrefix), backupName: info.bootstrapBackup } : null,
    );
    const { superuser, replication } = requireStandbySecrets(this.secrets, info.name);
    for (const m of info.members) {
      const p = this.pathsOf(info.name, m.name);
      mkdirOwned(dirname(p.logFile), 0o755);
      mkdirOwned(p.memberDir, 0o700, owner);
      mkdirOwned(join(p.memberDir, 'run'), 0o700, owner);
      mkdirOwned(p.pgLogDir, 0o700, owner);
      const cfg = buildPatroniConfig({
        cluster: info,
        member: m,
        paths: p,
        etcdClientPort: this.cfg.etcd.clientPort,
        superuser,
        replication,
        scripts: walgScriptPaths(dir),
        pgBinDir: pgBinDir(),
        exposeOn: this.cfg.exposeOn,
      });
      changed = writeFileAtomic(p.configFile, JSON.stringify(cfg, null, 2) + '\n', 0o600, owner) || changed;
    }
    return changed;
  }

  /** Creates missing application roles with the secret store's passwords; never alters existing ones. */
  async ensureAppUsers(info: LocalClusterInfo): Promise<boolean> {
    if (!info.users.length) return false;
    const c = new Client(await this.pgConfig(info.name));
    await c.connect();
    let changed = false;
    try {
      // The statement carries a password: keep it out of the server log even if it fails.
      await c.query("set log_statement = 'none'; set log_min_error_statement = 'panic'");
      for (const u of info.users) {
        const exists = await c.query('select 1 from pg_roles where rolname = $1', [u]);
        if (exists.rowCount) continue;
        const cred = this.secrets.read(info.name, u);
        if (!cred) throw new PreconditionFailedError(`secret ${info.name}/${u} missing`, { cluster: info.name, user: u });
        await c.query(`create role ${c.escapeIdentifier(u)} login password ${c.escapeLiteral(cred.password)}`);
        changed = true;
      }
    } finally {
      await c.end();
    }
    return changed;
  }
}
