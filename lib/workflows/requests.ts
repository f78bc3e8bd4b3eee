// The activities through which workflow code reaches the coordination workflows: names and inputs, shared by the
// workflow-side helpers (`withLock`, `enqueue`) and the activities `createActivities` registers on the worker.
// Each one sends the same signal (or update) a client would, on the task queue of the worker that runs it.
import type { EnqueueOptions } from '../queue/options.js';
import type { AcquireRequest, Decided } from './lock-core.js';

/** Activity names, under our own prefix so they never clash with the user's. */
export const requestActivityNames = {
  acquire: 'temporalCoordinationLockAcquire',
  tryAcquire: 'temporalCoordinationLockTryAcquire',
  renew: 'temporalCoordinationLockRenew',
  release: 'temporalCoordinationLockRelease',
  withdraw: 'temporalCoordinationLockWithdraw',
  enqueue: 'temporalCoordinationEnqueue',
} as const;

export interface LockActivityInput {
  /** The lock workflow's ID. */
  readonly workflowId: string;
  readonly requestId: string;
}

export interface LeaseActivityInput extends LockActivityInput {
  readonly token: number;
}

export interface EnqueueActivityInput {
  readonly key: string;
  readonly name: string;
  readonly args: readonly unknown[];
  /** With `jobId` always set, so a retried activity is a duplicate the queue ignores. */
  readonly options: EnqueueOptions & { readonly jobId: string };
  readonly idPrefix: string;
}

/** Each activity's signature, for `proxyActivities`. */
export interface RequestActivities {
  /** Signal-with-start of the acquire signal. */
  [requestActivityNames.acquire](input: {
    workflowId: string;
    request: AcquireRequest;
    /** Set for an election: the workflow, if this starts it, logs leader changes. */
    election?: boolean;
  }): Promise<void>;
  /** The try-acquire update-with-start: granted, rejected, or `unknown` when the resource is not free. */
  [requestActivityNames.tryAcquire](input: { workflowId: string; request: AcquireRequest }): Promise<Decided>;
  /** The renew update; fails with a non-retryable `LeaseLost` failure if the lease is gone. Returns ms to expiry. */
  [requestActivityNames.renew](input: LeaseActivityInput): Promise<number>;
  /** The release signal; a closed workflow holds nothing, so "not found" succeeds. */
  [requestActivityNames.release](input: LeaseActivityInput): Promise<void>;
  /** The withdraw signal; "not found" succeeds. */
  [requestActivityNames.withdraw](input: LockActivityInput): Promise<void>;
  /** The client's `enqueue`: validation, then signal-with-start of the enqueue signal. Returns the job ID. */
  [requestActivityNames.enqueue](input: EnqueueActivityInput): Promise<string>;
}
