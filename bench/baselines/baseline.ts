/**
 * What a baseline lock offers the contention driver (`bench/scenarios/_baseline.ts`): one contender's handle on one
 * lock, over a connection of its own.
 * @module
 */
export interface BaselineLock {
  /** Whether `acquire` returns a fencing token that strictly increases with every grant. */
  readonly fenced: boolean;
  /** Resolves once this contender holds the lock, with its fencing token if the lock has one. */
  acquire(): Promise<number | undefined>;
  /** Frees the lock; rejects if it was not held. */
  release(): Promise<void>;
  /** Closes the contender's connection. */
  close(): Promise<void>;
}
