/**
 * temporal-coordination: cluster-wide locks, semaphores and per-key job queues on Temporal (Node-only client API).
 *
 * ```ts
 * import { withLock, enqueue } from 'temporal-coordination';
 * await withLock('invoice:42', async (lease) => save(invoice, { fencingToken: lease.token }));
 * await enqueue('customer:7', 'sendInvoice', [invoiceId]);
 * ```
 * @module
 */
import { defaultCoordinator } from './default-coordinator.js';
import type { Coordinator } from './coordinator.js';

export { createCoordinator, type Coordinator } from './coordinator.js';
export { configure, defaultCoordinator } from './default-coordinator.js';
export type { CoordinatorOptions } from './context.js';
export type { TelemetryOptions } from './telemetry.js';
export { retryInterceptors } from './rpc.js';
export type { AcquireAllOptions, AcquireOptions, LockMode, LockOptions, TryAcquireOptions } from './lock/options.js';
export type { ForceReleaseOptions, Lease, LeaseSet, LockStatusResult } from './lock/client.js';
export {
  CoordinationError,
  JobCancelledError,
  JobFailedError,
  JobNotFoundError,
  LeaseLostError,
  LimitMismatchError,
  LockModeMismatchError,
  LockTimeoutError,
  ServerUnavailableError,
  type LeaseLostReason,
} from './errors.js';

/** `withLock` of the default coordinator (see `configure`). */
export const withLock: Coordinator['withLock'] = (...args) => defaultCoordinator().withLock(...args);
/** `acquire` of the default coordinator (see `configure`). */
export const acquire: Coordinator['acquire'] = (...args) => defaultCoordinator().acquire(...args);
/** `withSemaphore` of the default coordinator (see `configure`). */
export const withSemaphore: Coordinator['withSemaphore'] = (...args) => defaultCoordinator().withSemaphore(...args);
/** `withReadLock` of the default coordinator (see `configure`). */
export const withReadLock: Coordinator['withReadLock'] = (...args) => defaultCoordinator().withReadLock(...args);
/** `withWriteLock` of the default coordinator (see `configure`). */
export const withWriteLock: Coordinator['withWriteLock'] = (...args) => defaultCoordinator().withWriteLock(...args);
/** `tryAcquire` of the default coordinator (see `configure`). */
export const tryAcquire: Coordinator['tryAcquire'] = (...args) => defaultCoordinator().tryAcquire(...args);
/** `withLocks` of the default coordinator (see `configure`). */
export const withLocks: Coordinator['withLocks'] = (...args) => defaultCoordinator().withLocks(...args);
/** `acquireAll` of the default coordinator (see `configure`). */
export const acquireAll: Coordinator['acquireAll'] = (...args) => defaultCoordinator().acquireAll(...args);
/** `lockStatus` of the default coordinator (see `configure`). */
export const lockStatus: Coordinator['lockStatus'] = (...args) => defaultCoordinator().lockStatus(...args);
/** `forceRelease` of the default coordinator (see `configure`). */
export const forceRelease: Coordinator['forceRelease'] = (...args) => defaultCoordinator().forceRelease(...args);

export type { CampaignOptions, ObserveOptions } from './election/options.js';
export type { Leadership, LeaderState } from './election/client.js';

/** `campaign` of the default coordinator (see `configure`). */
export const campaign: Coordinator['campaign'] = (...args) => defaultCoordinator().campaign(...args);
/** `withLeadership` of the default coordinator (see `configure`). */
export const withLeadership: Coordinator['withLeadership'] = (...args) => defaultCoordinator().withLeadership(...args);
/** `observe` of the default coordinator (see `configure`). */
export const observe: Coordinator['observe'] = (...args) => defaultCoordinator().observe(...args);
/** `leader` of the default coordinator (see `configure`). */
export const leader: Coordinator['leader'] = (...args) => defaultCoordinator().leader(...args);

export type {
  CancelJobOptions,
  EnqueueOptions,
  JobResultOptions,
  JobRetryOptions,
  RateLimitOptions,
} from './queue/options.js';
export type { CancelResult, Job, JobFailure, JobStatus, QueueStatusResult } from './queue/client.js';

/** `enqueue` of the default coordinator (see `configure`). */
export const enqueue: Coordinator['enqueue'] = (...args) => defaultCoordinator().enqueue(...args);
/** `cancelJob` of the default coordinator (see `configure`). */
export const cancelJob: Coordinator['cancelJob'] = (...args) => defaultCoordinator().cancelJob(...args);
/** `queueStatus` of the default coordinator (see `configure`). */
export const queueStatus: Coordinator['queueStatus'] = (...args) => defaultCoordinator().queueStatus(...args);
/** `pauseQueue` of the default coordinator (see `configure`). */
export const pauseQueue: Coordinator['pauseQueue'] = (...args) => defaultCoordinator().pauseQueue(...args);
/** `resumeQueue` of the default coordinator (see `configure`). */
export const resumeQueue: Coordinator['resumeQueue'] = (...args) => defaultCoordinator().resumeQueue(...args);
