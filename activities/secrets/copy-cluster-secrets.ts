import type { ActivityDeps } from '../deps';
import { parseClusterRef } from '../../workflows/contracts/clusters';
import { PreconditionFailedError } from '../../workflows/contracts/errors';

/** Users a standby cannot start without: Patroni's superuser and the replication user. */
export const REQUIRED_STANDBY_USERS = ['postgres', 'standby'];

export interface CopySecretsResult {
  /** User names only: values never leave this activity. */
  copied: string[];
  unchanged: string[];
  dryRun: boolean;
}

/**
 * Copies a cluster's credentials to another cluster's secret store, renamed for the target, so that the
 * standby (which replicates the source's roles and passwords) can log in. Values move inside this activity
 * only; the result names users, never values. Missing required users are refused before anything is written.
 */
export function createCopyClusterSecrets(deps: ActivityDeps) {
  return async function secretsCopyClusterSecrets(input: {
    from: string;
    to: string;
    dryRun?: boolean;
  }): Promise<CopySecretsResult> {
    const from = parseClusterRef(input.from, 'from');
    const to = parseClusterRef(input.to, 'to');
    const source = deps.driverFor(from.site);
    const target = deps.driverFor(to.site);
    const users = await source.listSecretUsers(from.cluster);
    const missing = REQUIRED_STANDBY_USERS.filter((u) => !users.includes(u));
    if (missing.length > 0) {
      throw new PreconditionFailedError(
        `${input.from} has no ${missing.map((u) => `"${u}"`).join(' or ')} credentials in its secret store at site ${from.site}: ` +
          'a standby cannot log in without them; restore them at the source first',
        { missing },
      );
    }
    const result: CopySecretsResult = { copied: [], unchanged: [], dryRun: input.dryRun === true };
    for (const user of users) {
      const value = await source.readSecret(from.cluster, user);
      if (!value) continue;
      const existing = await target.readSecret(to.cluster, user);
      if (existing && existing.username === value.username && existing.password === value.password) {
        result.unchanged.push(user);
        continue;
      }
      if (!result.dryRun) await target.writeSecret(to.cluster, user, value);
      result.copied.push(user);
    }
    return result;
  };
}
