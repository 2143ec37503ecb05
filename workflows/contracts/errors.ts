// Typed runbook errors. Bundle-safe: workflows branch on the failure type string, activities throw these
// and `toApplicationFailure` carries the class name as the ApplicationFailure type.
import { ApplicationFailure } from '@temporalio/common';

export abstract class RunbookError extends Error {
  abstract readonly retryable: boolean;
  /** Facts for the journal and the failure details. Never secret values. */
  readonly facts: Record<string, unknown>;
  constructor(message: string, facts: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.facts = facts;
  }
}

/** Input that can never succeed as given: refused before anything changes. */
export class BadInputError extends RunbookError {
  readonly retryable = false;
}

/** The cluster named does not exist at that site. */
export class ClusterNotFoundError extends RunbookError {
  readonly retryable = false;
}

/** A precondition of the runbook does not hold (e.g. no complete base backup, target is a primary). */
export class PreconditionFailedError extends RunbookError {
  readonly retryable = false;
}

/**
 * pg_rewind ran and failed (e.g. the WAL back to the last common checkpoint is gone): the cluster can only come back
 * by a reseed. Patroni does not retry it, so neither does the runbook.
 */
export class RewindFailedError extends PreconditionFailedError {}

/**
 * The cluster stores a higher fencing epoch than the one the activity carries: a newer promotion decided since this
 * step was planned (a late retry, an older run, an old fence-guard). Nothing was changed; final.
 */
export class StaleEpochError extends PreconditionFailedError {}

/** A site or one of its parts (Patroni, Postgres, S3, etcd) cannot be reached right now. */
export class SiteUnreachableError extends RunbookError {
  readonly retryable = true;
}

/** Something is still converging (replay catching up, cluster starting): retry later. */
export class NotReadyError extends RunbookError {
  readonly retryable = true;
}

/** A wait ran out of time (replay did not reach the target LSN, a cluster did not come up). */
export class WaitTimedOutError extends RunbookError {
  readonly retryable = false;
}

/**
 * No complete base backup (stop sentinel) at or after the required LSN on the required timeline: whatever the
 * backup tool said, the backup did not land. Final: the same archive read again says the same.
 */
export class BackupNotProvenError extends RunbookError {
  readonly retryable = false;
}

/**
 * The primary's WAL archiving has failed (or not moved) for longer than the runbook allows, with no WAL archived
 * since: a base backup taken now could not be restored. Final for the run: a human must fix the archive first.
 */
export class ArchivingBrokenError extends RunbookError {
  readonly retryable = false;
}

/**
 * An ID token that does not prove who decides (expired, foreign issuer, wrong audience, bad signature, nonce
 * mismatch, not a JWT). The message says what is wrong in one sentence and never contains the token. Final: the same
 * token is refused again.
 */
export class IdentityRefusedError extends RunbookError {
  readonly retryable = false;
}

/** The identity provider (its discovery document or JWKS) does not answer right now: retry later. */
export class IdentityProviderUnreachableError extends RunbookError {
  readonly retryable = true;
}

/** Every failure type a runbook treats as final. */
export const NON_RETRYABLE_ERROR_TYPES = [
  'BadInputError', 'ClusterNotFoundError', 'PreconditionFailedError', 'RewindFailedError', 'StaleEpochError', 'WaitTimedOutError', 'BackupNotProvenError',
  'ArchivingBrokenError', 'IdentityRefusedError',
];

export function toApplicationFailure(err: RunbookError): ApplicationFailure {
  return ApplicationFailure.create({
    message: err.message,
    type: err.name,
    nonRetryable: !err.retryable,
    details: [err.facts],
  });
}
