// What the lock workflow and its clients agree on besides the messages in definitions.ts: timings, how many waiters
// may block in an update, and the memo field far-back waiters read.

/** Fixed protocol timings, shared with the client. */
export const lockTimings = {
  /** A grant must be claimed (first renewal) within this long, or it is revoked: this bounds what a dead waiter costs. */
  claimWindow: 5_000,
  /** An idle resource's workflow waits this long for a new request before it completes. */
  linger: 2_000,
} as const;

/** At most this many blocking waits and renewals at once: short of the server's 10 updates in flight per workflow. */
const MAX_UPDATES_IN_FLIGHT = 8;

/**
 * How many waiters at the head of the queue of a resource with `limit` slots may block in an update; the rest learn
 * from the memo when to. With the holders' renewals they stay under the server's 10 updates in flight per workflow,
 * with room to spare: an update turned away at that limit makes the server drop the workflow's cached state.
 */
export function headSlots(limit: number): number {
  return Math.max(1, MAX_UPDATES_IN_FLIGHT - Math.max(1, limit));
}

/**
 * The `limit` of a read-write lock's requests: many readers or one writer, by each request's `mode`. A request of one
 * kind on a busy resource of the other is rejected like one with another limit.
 */
export const READ_WRITE = 0;

/**
 * The memo field with the ticket of the last waiter that may block in an update: far-back waiters read it with a
 * describe (served by the server alone: no workflow task, no query buffer) to learn when to switch to a blocking wait.
 */
export const BLOCKING_UP_TO_MEMO = 'blockingUpTo';

/** A lease's ttl when the requester gives none, in ms (`'30s'`), from clients and from workflow code alike. */
export const DEFAULT_TTL = 30_000;
