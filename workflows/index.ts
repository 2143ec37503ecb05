// Runbooks only: every export of this module becomes a workflow type.
export { provisionStandby } from './provision-standby';
