// Workflow-safe: workflow IDs are derived here, and only here, from resource IDs and queue keys.

/** The task queue the coordination workflows (and their activities) run on, unless configured otherwise. */
export const DEFAULT_TASK_QUEUE = 'temporal-coordination';
/** Prefix of every workflow ID derived from a resource ID or queue key, unless configured otherwise. */
export const DEFAULT_ID_PREFIX = 'temporal-coordination/';

/** Temporal's limit on workflow ID length; resource IDs are checked against what is left after our prefix. */
const MAX_WORKFLOW_ID_LENGTH = 1000;

/**
 * Throws a `TypeError` or `RangeError` naming the argument unless `value` is a non-empty string that fits,
 * with `prefix`, in a workflow ID.
 */
export function checkResourceId(name: string, value: unknown, prefix: string): string {
  if (typeof value !== 'string') {
    throw new TypeError(`Expected \`${name}\` to be a string, got \`${String(value)}\` (${typeof value})`);
  }
  if (value.length === 0) throw new TypeError(`Expected \`${name}\` to be a non-empty string`);
  const room = MAX_WORKFLOW_ID_LENGTH - prefix.length;
  if (value.length > room) {
    throw new RangeError(
      `Expected \`${name}\` to be at most ${room} characters (Temporal workflow IDs are limited to ${MAX_WORKFLOW_ID_LENGTH}), got ${value.length}`,
    );
  }
  return value;
}

/** The prefix of every lock/semaphore workflow ID. */
export function lockIdPrefix(idPrefix: string): string {
  return `${idPrefix}lock:`;
}

/** The prefix of every election's workflow ID: an election and a lock of the same name are separate resources. */
export function electionIdPrefix(idPrefix: string): string {
  return `${idPrefix}election:`;
}

/** The prefix of every queue workflow ID. */
export function queueIdPrefix(idPrefix: string): string {
  return `${idPrefix}queue:`;
}

/**
 * The order in which every caller takes a set of locks: sorted, duplicates dropped. Two callers whose sets overlap
 * then wait for their common locks in the same order, so neither can hold one the other waits for while waiting for
 * one the other holds.
 */
export function lockOrder(resourceIds: unknown): string[] {
  if (!Array.isArray(resourceIds) || resourceIds.length === 0) {
    throw new TypeError(
      `Expected \`resourceIds\` to be a non-empty array of resource IDs, got \`${String(resourceIds)}\``,
    );
  }
  return [...new Set(resourceIds as string[])].sort();
}
