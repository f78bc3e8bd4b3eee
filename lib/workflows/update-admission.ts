// The rule the lock workflow follows to stay replayable next to updates, in one place:
//
// 1. An update is never accepted in a workflow task that handled events (signals, timers, answers to signals sent to
//    other workflows): it is refused as busy, which writes no history, and its client sends it again.
// 2. The commands that follow from a task's changes are written by the workflow's main loop in one fixed order, after
//    every update completion started before them (`nextRound`), never by handlers racing each other.
// 3. An update handler starts no timer, and no timer is ever cancelled.
//
// Why: the Temporal TypeScript SDK (1.24) groups a workflow task's events and updates into activations differently on
// different paths. After a task that wrote no commands, a worker without the workflow in its cache runs that task's
// events and the next task's update in one activation, at the later task's time and history length, while a cached
// worker and every replay run them in two; other groupings have been seen after a worker died mid-task. Commands that
// depend on the grouping then differ on replay, which fails the task with a nondeterminism error at every attempt: the
// resource wedges at the next worker restart or cache eviction. test/sdk-update-ordering.test.ts reproduces the first
// case on a minimal workflow (part 1 of the rule is what keeps the lock out of it) and says when a release fixes it.
// Upstream reports of this class of bug: https://github.com/temporalio/sdk-rust/issues/1146 (that case),
// https://github.com/temporalio/sdk-typescript/issues/1966, https://github.com/temporalio/sdk-python/issues/1591,
// https://github.com/temporalio/sdk-python/issues/673 and https://github.com/temporalio/sdk-rust/issues/943.
import { condition, workflowInfo } from '@temporalio/workflow';
import { failures } from '../errors.js';

interface TaskMark {
  readonly historyLength: number;
  readonly time: number;
}

/**
 * Tells whether the current workflow task handled events (part 1 of the rule). A task is recognised by its history
 * length or by its start time (workflow time). The first of two activations of one task can see a history a little
 * shorter (up to the task's scheduled event) and the previous task's time, while the next task starts at least 3
 * events later (completed, scheduled, started). A replayed task can see other history lengths than it did the first
 * time, so a task that is that close but starts later than the first one seen at its history length (a new attempt of
 * an update's task, which adds no events when refused) is a new task.
 */
export class UpdateAdmission {
  private eventTask: TaskMark = { historyLength: -Infinity, time: -1 };
  private firstSeen: TaskMark = { historyLength: -1, time: -1 };

  /** Call whenever the workflow handles an event: a signal, a timer firing, a signal it sent landing. */
  eventHandled(): void {
    this.eventTask = { historyLength: workflowInfo().historyLength, time: Date.now() };
  }

  /**
   * Call from an update's validator: throws a busy failure (carrying `details` to the client) if this task handled
   * events or if the caller says it is `busy` for reasons of its own.
   */
  admit(busy: boolean, details: unknown[] = []): void {
    // Looked at on every call, so the first sight of each history length is recorded.
    const inEventTask = this.inEventTask();
    if (!busy && !inEventTask) return;
    throw failures.busy(details);
  }

  private inEventTask(): boolean {
    const { historyLength } = workflowInfo();
    const time = Date.now();
    if (historyLength !== this.firstSeen.historyLength) this.firstSeen = { historyLength, time };
    if (historyLength === this.eventTask.historyLength || time === this.eventTask.time) return true;
    return historyLength - this.eventTask.historyLength < 3 && time === this.firstSeen.time;
  }
}

/**
 * Resolves in the SDK's next round of condition checks: after every update completion started before it is written
 * (part 2 of the rule).
 */
export function nextRound(): Promise<void> {
  let firstLook = true;
  return condition(() => {
    if (!firstLook) return true;
    firstLook = false;
    return false;
  });
}
