// The coordination workflows with an incompatible change to the lock workflow: its first command is a memo upsert, so
// replaying a history that the real one wrote fails with a nondeterminism error, as a history the SDK wrote out of
// order would.
import { upsertMemo } from '@temporalio/workflow';
import { lockWorkflow as unchangedLockWorkflow, type LockWorkflowInput } from '../../lib/workflows/lock-workflow.js';

export * from '../../lib/workflows/index.js';

export function lockWorkflow(input?: LockWorkflowInput): Promise<void> {
  upsertMemo({ changed: true });
  return unchangedLockWorkflow(input);
}
