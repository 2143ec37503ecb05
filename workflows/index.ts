// Runbooks only: every export of this module becomes a workflow type.
export { provisionStandby } from './provision-standby';
export { forceBackup } from './force-backup';
export { promote } from './promote';
export { failbackReseed } from './failback-reseed';
export { fenceGuard } from './fence-guard';
export { drill } from './drill';
export { regionFailover } from './region-failover';
export { standbyLag } from './standby-lag';
export { retention } from './retention';
