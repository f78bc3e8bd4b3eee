/**
 * Workflow-safe entry point: locks and queues for your own workflow code, the coordination workflows (host them with
 * `createWorker` from `temporal-coordination/worker`, or point your own worker's `workflowsPath` here) and their
 * signal, query and update definitions.
 *
 * ```ts
 * import { withLock, enqueue } from 'temporal-coordination/workflows';
 * export async function transfer(from: string, to: string) {
 *   await withLock(`account:${from}`, async (lease) => { ... lease.token ... }, { ttl: '1m' });
 *   await enqueue(`customer:${to}`, 'notify', [from]);
 * }
 * ```
 * @module
 */
export { lockWorkflow, type LockWorkflowInput } from './lock-workflow.js';
export { lockTimings } from './lock-protocol.js';
export * from './definitions.js';
export type {
  AcquireRequest,
  Decided,
  LockMode,
  LockStatus,
  Notification,
  RequestState,
  RequesterWorkflow,
  LockSnapshot,
} from './lock-core.js';
export { queueWorkflow, queueTimings, type QueueWorkflowInput } from './queue-workflow.js';
export { RUN_JOB_ACTIVITY, queueLimits } from './queue-core.js';
export type {
  EnqueueRequest,
  JobFailure,
  JobOutcome,
  JobRetryPolicy,
  JobView,
  QueueResult,
  QueueSnapshot,
  QueueStatus,
  RunJobInput,
} from './queue-core.js';
export {
  tryWithLock,
  withLeadership,
  withLock,
  withLocks,
  withReadLock,
  withWriteLock,
  type TryWithLockResult,
  type WorkflowLeadership,
  type WorkflowLeadershipOptions,
  type WorkflowLease,
  type WorkflowLockOptions,
} from './with-lock.js';
export { enqueue, type EnqueuedJob, type WorkflowEnqueueOptions } from './enqueue.js';
