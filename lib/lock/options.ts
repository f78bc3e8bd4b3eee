import type { Duration } from '@temporalio/common';
import type { LockMode } from '../workflows/lock-core.js';

export type { LockMode };

export interface LockOptions {
  /**
   * How long a grant stays valid without renewal. `withLock` and auto-renewing leases renew it about every `ttl / 3`;
   * a holder that dies loses the lease at most `ttl` after its last renewal.
   * @default '30s'
   */
  readonly ttl?: Duration;
  /**
   * How long to wait for the grant before giving up with a `LockTimeoutError`. The request is withdrawn, so it is never
   * granted later.
   * @default undefined (wait as long as it takes)
   */
  readonly waitTimeout?: Duration;
  /**
   * Stops waiting for the grant, rejecting with `signal.reason`; the request is withdrawn. It does not end a lease
   * already granted: release it for that.
   * @default undefined
   */
  readonly signal?: AbortSignal;
}

export interface AcquireOptions extends LockOptions {
  /**
   * How many holders the resource admits at once: 1 is a lock, more is a semaphore. Every request for one resource
   * must use the same limit while it is busy; a different one fails with `LimitMismatchError`.
   * @default 1
   */
  readonly limit?: number;
  /**
   * Makes the resource a read-write lock: many holders may `'read'` at once, one may `'write'`, alone. Grants stay in
   * arrival order, so a writer is never overtaken by readers that came after it. Every request for one resource must
   * agree on being read-write or not while it is busy; the other kind fails with `LockModeMismatchError`. Not with
   * `limit`.
   * @default undefined (a lock, or a semaphore of `limit` slots)
   */
  readonly mode?: LockMode;
  /**
   * Renew the lease in the background (about every `ttl / 3`) until it is released. Without it, call `lease.renew()`
   * yourself before `ttl` passes.
   * @default true
   */
  readonly autoRenew?: boolean;
}

/** Options of `acquireAll`: those of `acquire` but `limit` and `mode` (it takes locks), for the whole set. */
export type AcquireAllOptions = Omit<AcquireOptions, 'limit' | 'mode'>;

/** Options of `tryAcquire`: those of `acquire` but `waitTimeout` (it never waits for a slot). */
export type TryAcquireOptions = Omit<AcquireOptions, 'waitTimeout'>;
