// Picks the driver for a site by its kind. Drivers are cached per site for the worker's lifetime.
import type { LoadedSites } from './sites-file';
import type { SiteDriver } from './site-driver';
import { LocalSiteDriver } from './local-driver';
import { ZalandoSiteDriver } from './zalando-driver';
import { BadInputError } from '../../workflows/contracts/errors';

export function createDriverFactory(sites: LoadedSites): (site: string) => SiteDriver {
  const cache = new Map<string, SiteDriver>();
  return (site: string) => {
    let driver = cache.get(site);
    if (!driver) {
      const cfg = sites.sites[site];
      if (!cfg) {
        throw new BadInputError(`site "${site}" is not in the sites file ${sites.path} (known: ${Object.keys(sites.sites).join(', ')})`);
      }
      driver = cfg.kind === 'zalando' ? new ZalandoSiteDriver(cfg) : new LocalSiteDriver(cfg);
      cache.set(site, driver);
    }
    return driver;
  };
}
