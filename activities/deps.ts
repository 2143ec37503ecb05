// What every activity factory is given. Activities never construct their own clients or drivers.
import type { LoadedSites, SiteConfig } from './sites/sites-file';
import type { SiteDriver } from './sites/site-driver';
import { BadInputError } from '../workflows/contracts/errors';

export interface ActivityDeps {
  sites: LoadedSites;
  driverFor(site: string): SiteDriver;
}

export function siteConfig(deps: ActivityDeps, site: string): SiteConfig & { name: string } {
  const cfg = deps.sites.sites[site];
  if (!cfg) {
    throw new BadInputError(
      `site "${site}" is not in the sites file ${deps.sites.path} (known: ${Object.keys(deps.sites.sites).join(', ') || 'none'})`,
    );
  }
  return cfg;
}
