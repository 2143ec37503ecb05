export * from './clusters';
export * from './errors';
export * from './journal';
export * from './lsn';
export * from './runbooks';
export * from './search-attributes';
export * from './task-queues';
