// The runbook commands of drctl, in the order `drctl --help` lists them. A new runbook (region-failover, drills)
// is one file with a RunbookCommandSpec and one line here.
import { drill } from './drill';
import { failback } from './failback';
import { forceBackup } from './force-backup';
import { promote } from './promote';
import { provisionStandby } from './provision-standby';
import { regionFailover } from './region-failover';
import { retention } from './retention';
import type { RunbookCommandSpec } from './spec';

export type { RunbookCommandSpec } from './spec';

export const RUNBOOK_COMMANDS: RunbookCommandSpec[] = [
  provisionStandby,
  forceBackup,
  promote,
  failback,
  regionFailover,
  drill,
  retention,
];
