/**
 * Workflow-safe entry point: the coordination workflows (host them with `createWorker` from
 * `temporal-coordination/worker`, or point your own worker's `workflowsPath` here) and their
 * signal, query and update definitions.
 * @module
 */
export { lockWorkflow, lockTimings, type LockWorkflowInput } from './lock-workflow.js';
export * from './definitions.js';
export type { AcquireRequest, LockStatus, RequestState, LockSnapshot } from './lock-core.js';
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
