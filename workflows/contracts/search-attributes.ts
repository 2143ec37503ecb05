// Search attributes every runbook sets. Registered by the sandbox (dev server flags) and, in production, by
// `temporal operator search-attribute create` (see deploy/). Never secret values: they are not encrypted.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const DR_RUNBOOK = defineSearchAttributeKey('DrRunbook', SearchAttributeType.KEYWORD);
export const DR_CLUSTER = defineSearchAttributeKey('DrCluster', SearchAttributeType.KEYWORD);
export const DR_SITE = defineSearchAttributeKey('DrSite', SearchAttributeType.KEYWORD);
export const DR_PHASE = defineSearchAttributeKey('DrPhase', SearchAttributeType.KEYWORD);
export const DR_APPROVAL_PENDING = defineSearchAttributeKey('DrApprovalPending', SearchAttributeType.BOOL);
export const DR_OUTCOME = defineSearchAttributeKey('DrOutcome', SearchAttributeType.KEYWORD);

/** Name and type of each key, for `temporal server start-dev --search-attribute` and `operator search-attribute create`. */
export const SEARCH_ATTRIBUTE_REGISTRATIONS: ReadonlyArray<{ name: string; type: 'Keyword' | 'Bool' }> = [
  { name: DR_RUNBOOK.name, type: 'Keyword' },
  { name: DR_CLUSTER.name, type: 'Keyword' },
  { name: DR_SITE.name, type: 'Keyword' },
  { name: DR_PHASE.name, type: 'Keyword' },
  { name: DR_APPROVAL_PENDING.name, type: 'Bool' },
  { name: DR_OUTCOME.name, type: 'Keyword' },
];
