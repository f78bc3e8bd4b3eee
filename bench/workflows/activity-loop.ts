/**
 * The queue's floor: a workflow that runs no-op activities one after the other, with nothing else in the way. The
 * time from one activity's start to the next one's is one activity round trip through the server and back.
 * Workflow-safe: imports only `@temporalio/workflow`.
 * @module
 */
import { proxyActivities } from '@temporalio/workflow';

export interface ActivityLoopActivities {
  /** Does nothing; the bench process notes when it ran. */
  noop(index: number): Promise<void>;
}

const { noop } = proxyActivities<ActivityLoopActivities>({ startToCloseTimeout: '1 minute' });

/** Runs `count` no-op activities in sequence. */
export async function activityLoop(count: number): Promise<void> {
  for (let index = 0; index < count; index++) await noop(index);
}
