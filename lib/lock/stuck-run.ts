import type { WorkflowClient } from '@temporalio/client';

/**
 * A run whose workflow task failed this many times with no success in between is stuck for good, and is terminated:
 * as one task's attempts (the server records only the first failure), or as failures of new tasks (new events reset
 * the attempt count, and each new task's failure is recorded).
 */
const STUCK_FAILURES = 3;
/** How many of a run's latest events are read to count its failed workflow tasks. */
const STUCK_LOOKBACK = 200;

/**
 * Terminates the running lock workflow `workflowId` if its workflow task fails again and again: it makes no progress
 * and never will. Its worker cannot replay its history (a nondeterminism error on a worker not set up with
 * `workflowFailureErrorTypes`, which retries it forever, as test/lock-recovery.test.ts shows), or the server refuses
 * the completions it sends (seen in the fault suite after a worker died mid-task on the Temporal SDK 1.24). The next
 * request starts a new run. Waiting rooms call it while they have waiters; operators have
 * `temporal-coordination repair lock <resourceId>`.
 * Resolves to the number of failures that made it terminate the run, or `undefined` if the run is not stuck.
 */
export async function terminateIfStuck(client: WorkflowClient, workflowId: string): Promise<number | undefined> {
  const { status, runId, raw } = await client.getHandle(workflowId).describe();
  if (status.name !== 'RUNNING') return undefined;
  let failures = (raw.pendingWorkflowTask?.attempt ?? 1) - 1;
  if (failures < STUCK_FAILURES) {
    const { history } = await client.workflowService.getWorkflowExecutionHistoryReverse({
      namespace: client.options.namespace,
      execution: { workflowId, runId },
      maximumPageSize: STUCK_LOOKBACK,
    });
    failures = 0;
    for (const event of history?.events ?? []) {
      if (event.workflowTaskCompletedEventAttributes) break;
      if (event.workflowTaskFailedEventAttributes) failures++;
    }
  }
  if (failures < STUCK_FAILURES) return undefined;
  // That run only: a new one may have started since.
  await client
    .getHandle(workflowId, runId)
    .terminate(`temporal-coordination: ${failures} workflow tasks failed in a row; a new run takes over`);
  return failures;
}
