import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import { lastArchivedWal, type ArchivedWal } from './backup-catalogue';

/**
 * The newest WAL segment in a site's archive: how far a lost source got, as far as the archive knows. The
 * archive is named by its site (for the S3 settings in the sites file) and prefix, so it can be read while
 * that site's region is down.
 */
export function createLastArchivedWal(deps: ActivityDeps) {
  return async function s3LastArchivedWal(input: { archiveSite: string; walPrefix: string }): Promise<ArchivedWal | null> {
    return lastArchivedWal(siteConfig(deps, input.archiveSite).s3, input.walPrefix);
  };
}
