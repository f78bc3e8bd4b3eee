// Workflow-safe: imported by workflow code (for the failures) and by clients (for the classes).
import { ApplicationFailure } from '@temporalio/common';

/** `ApplicationFailure` types our workflows throw; clients map them back to the classes below. */
export const failureTypes = {
  leaseLost: 'TemporalCoordination.LeaseLost',
  limitMismatch: 'TemporalCoordination.LimitMismatch',
  modeMismatch: 'TemporalCoordination.ModeMismatch',
  /** Thrown by `withLock` in workflow code when `waitTimeout` passes (clients throw `LockTimeoutError`). */
  lockTimeout: 'TemporalCoordination.LockTimeout',
  unknownRequest: 'TemporalCoordination.UnknownRequest',
  /** An update turned away for now by a lock workflow (see `update-admission.ts`); the client sends it again. */
  busy: 'TemporalCoordination.Busy',
  /** A `tryAcquire` turned away because the resource has holders or waiters: nothing was recorded. */
  notFree: 'TemporalCoordination.NotFree',
  unknownJob: 'TemporalCoordination.UnknownJob',
  jobFailed: 'TemporalCoordination.JobFailed',
} as const;

/** Base class of every error this library throws on purpose. */
export class CoordinationError extends Error {
  override readonly name: string = 'CoordinationError';
}

/** Thrown when `waitTimeout` passes before the lock or semaphore is granted. The request is withdrawn. */
export class LockTimeoutError extends CoordinationError {
  override readonly name = 'LockTimeoutError';
  constructor(
    readonly resourceId: string,
    /** The wait budget that ran out, in milliseconds. */
    readonly waitTimeout: number,
  ) {
    super(`Timed out after ${waitTimeout} ms waiting for \`${resourceId}\``);
  }
}

/** Why a lease can no longer be trusted. */
export type LeaseLostReason = 'expired' | 'revoked' | 'released';

/**
 * Thrown, and used as `lease.signal.reason`, when a lease can no longer be proven valid: a renewal was rejected
 * (`revoked`), the local deadline passed without a successful renewal (`expired`), or it was released.
 */
export class LeaseLostError extends CoordinationError {
  override readonly name = 'LeaseLostError';
  constructor(
    readonly resourceId: string,
    readonly token: number,
    readonly reason: LeaseLostReason,
    options?: ErrorOptions,
  ) {
    super(`Lease ${token} on \`${resourceId}\` is lost (${reason})`, options);
  }
}

/** Thrown when a semaphore request's `limit` differs from the one the resource is running with. */
export class LimitMismatchError extends CoordinationError {
  override readonly name = 'LimitMismatchError';
  constructor(
    readonly resourceId: string,
    readonly limit: number,
    readonly activeLimit: number,
  ) {
    super(`\`${resourceId}\` is running with limit ${activeLimit}; a request with limit ${limit} was rejected`);
  }
}

/** Thrown when a read-write request meets a busy lock or semaphore of the same ID, or the reverse. */
export class LockModeMismatchError extends CoordinationError {
  override readonly name = 'LockModeMismatchError';
  constructor(
    readonly resourceId: string,
    /** Whether the rejected request was a read-write lock's (`mode: 'read' | 'write'`). */
    readonly readWrite: boolean,
  ) {
    super(
      readWrite
        ? `\`${resourceId}\` is running as a lock or semaphore; a read-write lock's request was rejected`
        : `\`${resourceId}\` is running as a read-write lock; a request without a \`mode\` was rejected`,
    );
  }
}

/** Thrown by `job.result()` when the job failed for good (after its last attempt, or for an unknown job name). */
export class JobFailedError extends CoordinationError {
  override readonly name = 'JobFailedError';
  constructor(
    readonly key: string,
    readonly jobId: string,
    readonly attempts: number,
    /** The last attempt's error message. */
    readonly failure: string,
    options?: ErrorOptions,
  ) {
    super(`Job \`${jobId}\` on queue \`${key}\` failed after ${attempts} attempt(s): ${failure}`, options);
  }
}

/** Thrown by `job.result()` for a job the queue no longer remembers (older than the retention bound) or never had. */
export class JobNotFoundError extends CoordinationError {
  override readonly name = 'JobNotFoundError';
  constructor(
    readonly key: string,
    readonly jobId: string,
    options?: ErrorOptions,
  ) {
    super(`Queue \`${key}\` has no record of job \`${jobId}\` (never enqueued, or past the result retention)`, options);
  }
}

/** Thrown by `job.result()` when the job was cancelled (`job.cancel()`, `cancelJob`, the CLI's `cancel`). */
export class JobCancelledError extends CoordinationError {
  override readonly name = 'JobCancelledError';
  constructor(
    readonly key: string,
    readonly jobId: string,
    /** The reason given to the cancel, if any. */
    readonly reason: string | undefined,
    options?: ErrorOptions,
  ) {
    super(`Job \`${jobId}\` on queue \`${key}\` was cancelled${reason === undefined ? '' : `: ${reason}`}`, options);
  }
}

/** Thrown when the Temporal server cannot be reached within the retry budget. The last RPC error is the `cause`. */
export class ServerUnavailableError extends CoordinationError {
  override readonly name = 'ServerUnavailableError';
}

function nonRetryable(type: string, message: string, options: { details?: unknown[]; cause?: Error } = {}) {
  return ApplicationFailure.create({ type, message, nonRetryable: true, ...options });
}

/** The failures workflow code (and the activities acting for it) throws, each message written once. */
export const failures = {
  /** An update turned away for now by a lock workflow (see update-admission.ts); `details` go to the client. */
  busy: (details: unknown[]) =>
    nonRetryable(failureTypes.busy, 'Events were handled in this workflow task; send the update again', { details }),
  notFree: () => nonRetryable(failureTypes.notFree, 'The resource has holders or waiters'),
  leaseLost: (token: number, options: { readonly resourceId?: string; readonly cause?: Error } = {}) =>
    nonRetryable(
      failureTypes.leaseLost,
      options.resourceId === undefined
        ? `Lease ${token} is no longer held`
        : `Lease ${token} on \`${options.resourceId}\` is lost`,
      options.cause ? { cause: options.cause } : {},
    ),
  lockTimeout: (resourceId: string, waitTimeout: number) =>
    nonRetryable(failureTypes.lockTimeout, new LockTimeoutError(resourceId, waitTimeout).message),
  limitMismatch: (resourceId: string, limit: number, activeLimit: number) =>
    nonRetryable(failureTypes.limitMismatch, new LimitMismatchError(resourceId, limit, activeLimit).message),
  modeMismatch: (resourceId: string, readWrite: boolean) =>
    nonRetryable(failureTypes.modeMismatch, new LockModeMismatchError(resourceId, readWrite).message),
};
