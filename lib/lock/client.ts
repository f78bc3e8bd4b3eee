import { setTimeout as sleep } from 'node:timers/promises';
import { QueryRejectedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Context } from '../context.js';
import { LimitMismatchError, LockModeMismatchError, LockTimeoutError, ServerUnavailableError } from '../errors.js';
import { READ_WRITE } from '../workflows/lock-protocol.js';
import { checkResourceId, lockIdPrefix, lockOrder } from '../ids.js';
import { checkKnownOptions, optionalSignal, optionalString, positiveInteger } from '../options.js';
import { isBusy, isTransient, retryTransient } from '../rpc.js';
import { forceReleaseUpdate, lockStatusQuery } from '../workflows/definitions.js';
import { ClientLease, type Lease } from './lease.js';
import { ClientLeaseSet, releaseAll, type LeaseSet } from './lease-set.js';
import type { AcquireAllOptions, AcquireOptions, LockMode, LockOptions, TryAcquireOptions } from './options.js';
import { LockRequest, UNAVAILABLE_BUDGET, acquireParams, type AcquireParams } from './request.js';
import { LockTelemetry, type LockHold, type LockKind, type LockWait } from './telemetry.js';
import { WaitingRoom, type WaitOutcome } from './waiting-room.js';

export type { Lease } from './lease.js';
export type { LeaseSet } from './lease-set.js';

/** Bounds of the backoff between requests asked again in a row. */
const ASK_AGAIN_MIN = 20;
const ASK_AGAIN_MAX = 2_000;

export interface LockStatusResult {
  readonly resourceId: string;
  /** Whether a workflow is running for the resource; an idle resource has none and reports no holders. */
  readonly running: boolean;
  /** The running limit (1 for a lock, 0 for a read-write lock), or `undefined` when idle. */
  readonly limit: number | undefined;
  readonly holders: readonly {
    readonly token: number;
    readonly expiresAt: Date;
    readonly claimed: boolean;
    /** Whether it reads or writes, for a read-write lock. */
    readonly mode?: LockMode;
  }[];
  /** How many requests wait for a slot. */
  readonly waiting: number;
  /** The latest forced releases of the running workflow (see `forceRelease`), oldest first. */
  readonly forcedReleases: readonly { readonly token: number; readonly reason: string; readonly at: Date }[];
}

export interface ForceReleaseOptions {
  /** Why the lease is taken away; kept with the release and shown by `lockStatus`. @default 'forced release' */
  readonly reason?: string;
  /** Gives up waiting for the answer (the release may still happen). */
  readonly signal?: AbortSignal;
}

export interface LockApi {
  /**
   * Runs `fn` while holding the lock on `resourceId`, renewing the lease while it runs and releasing it afterwards,
   * and returns what `fn` returns. If `fn` throws, that error wins; a failed release is attached as its `suppressed`.
   */
  withLock<T>(resourceId: string, fn: (lease: Lease) => T | Promise<T>, options?: LockOptions): Promise<T>;
  /** Like `withLock` for a semaphore: at most `limit` holders of `resourceId` at once. */
  withSemaphore<T>(
    resourceId: string,
    limit: number,
    fn: (lease: Lease) => T | Promise<T>,
    options?: LockOptions,
  ): Promise<T>;
  /**
   * Runs `fn` while holding `resourceId` as one of its readers (a read-write lock: many readers, or one writer), and
   * releases it afterwards; returns what `fn` returns.
   */
  withReadLock<T>(resourceId: string, fn: (lease: Lease) => T | Promise<T>, options?: LockOptions): Promise<T>;
  /** Runs `fn` while holding `resourceId` as its one writer (no reader beside it), like `withReadLock`. */
  withWriteLock<T>(resourceId: string, fn: (lease: Lease) => T | Promise<T>, options?: LockOptions): Promise<T>;
  /** Waits for a slot of `resourceId` and returns its lease, which renews until released (`await using` works). */
  acquire(resourceId: string, options?: AcquireOptions): Promise<Lease>;
  /**
   * Takes a slot of `resourceId` if one is free and nobody waits, else resolves to `undefined` at once: the request
   * never joins the queue and is never granted later. One round trip to the server when the resource is free.
   */
  tryAcquire(resourceId: string, options?: TryAcquireOptions): Promise<Lease | undefined>;
  /**
   * Runs `fn` while holding the locks on every one of `resourceIds`, and releases them afterwards. The locks are taken
   * one at a time, in one order for every caller (sorted, duplicates dropped), so calls whose sets overlap never
   * deadlock. `waitTimeout` and `signal` cover the whole set; when the wait ends early, every lock already taken is
   * released and the pending request withdrawn. `fn` gets the leases by resource ID.
   */
  withLocks<T>(
    resourceIds: readonly string[],
    fn: (leases: LeaseSet) => T | Promise<T>,
    options?: LockOptions,
  ): Promise<T>;
  /** Waits for the locks on every one of `resourceIds`, as `withLocks` takes them, and returns their leases. */
  acquireAll(resourceIds: readonly string[], options?: AcquireAllOptions): Promise<LeaseSet>;
  /** Holders, tokens and waiters of `resourceId`, read with a query (no history cost). */
  lockStatus(resourceId: string): Promise<LockStatusResult>;
  /**
   * For operators: frees the slot of `resourceId` held with fencing token `token`, whoever holds it, and records
   * `reason`. The holder's next renewal fails, so its `lease.signal` aborts with a `LeaseLostError`; a protected
   * resource that checks tokens rejects its late writes once the next holder has written. Resolves to
   * `{ released: false }` when no current holder has that token (already released, expired, or an idle resource).
   */
  forceRelease(resourceId: string, token: number, options?: ForceReleaseOptions): Promise<{ released: boolean }>;
}

export function createLockApi(context: Context): LockApi {
  const locks = new LockClient(context);
  return {
    acquire: (resourceId, options) => locks.acquire(resourceId, options),
    withSemaphore: (resourceId, limit, fn, options) => locks.withSemaphore(resourceId, limit, fn, options),
    withLock: (resourceId, fn, options) => locks.withSemaphore(resourceId, 1, fn, options),
    withReadLock: (resourceId, fn, options) => locks.withMode(resourceId, 'read', fn, options),
    withWriteLock: (resourceId, fn, options) => locks.withMode(resourceId, 'write', fn, options),
    tryAcquire: (resourceId, options) => locks.tryAcquire(resourceId, options),
    acquireAll: (resourceIds, options) => locks.acquireAll(resourceIds, options),
    withLocks: (resourceIds, fn, options) => locks.withLocks(resourceIds, fn, options),
    lockStatus: (resourceId) => locks.lockStatus(resourceId),
    forceRelease: (resourceId, token, options) => locks.forceRelease(resourceId, token, options),
  };
}

const knownAcquireAllOptions = new Set(['ttl', 'waitTimeout', 'signal', 'autoRenew']);
const knownTryAcquireOptions = new Set(['ttl', 'signal', 'limit', 'mode', 'autoRenew']);

function checkFunction(fn: unknown): void {
  if (typeof fn !== 'function') throw new TypeError(`Expected \`fn\` to be a function, got ${typeof fn}`);
}

/** Runs `fn`, then releases `held`. If `fn` throws, that error wins; a failed release is attached as its `suppressed`. */
export async function runThenRelease<T>(held: { release(): Promise<void> }, fn: () => T | Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await fn();
  } catch (error) {
    await held.release().catch((releaseError: unknown) => {
      if (typeof error === 'object' && error !== null) {
        Object.defineProperty(error, 'suppressed', { value: releaseError, configurable: true });
      }
    });
    throw error;
  }
  await held.release();
  return result;
}

/** What a request is for, in telemetry. */
function lockKind({ election, mode, limit }: AcquireParams): LockKind {
  return election ? 'election' : mode ? 'read-write' : limit > 1 ? 'semaphore' : 'lock';
}

export class LockClient {
  private readonly rooms = new Map<string, WaitingRoom>();
  private readonly telemetry: LockTelemetry;
  /** The telemetry of each lease granted here, whose span the critical section of `withLock` runs in. */
  private readonly holds = new WeakMap<Lease, LockHold>();

  /** `prefix`: of the workflow IDs of the resources it serves (elections have their own). */
  constructor(
    private readonly context: Context,
    readonly prefix = lockIdPrefix(context.idPrefix),
  ) {
    this.telemetry = new LockTelemetry(context.telemetry);
  }

  async acquire(resourceId: string, options: AcquireOptions = {}): Promise<Lease> {
    return this.acquireWith(acquireParams(resourceId, options, this.prefix));
  }

  /** Request, wait, lease: asked again under a new ID whenever the workflow lost the request or its grant lapsed. */
  async acquireWith(params: AcquireParams): Promise<Lease> {
    const { resourceId } = params;
    params.signal?.throwIfAborted();
    // `AbortSignal.timeout` takes whole milliseconds; a duration given in ms may have a fraction.
    const timeout = params.waitTimeout === undefined ? undefined : AbortSignal.timeout(Math.ceil(params.waitTimeout));
    const signal = AbortSignal.any([params.signal, timeout].filter((s) => s !== undefined));
    const request = new LockRequest(this.context.client, this.context.taskQueue, params);
    const telemetry = this.telemetry.waitFor(resourceId, lockKind(params));
    try {
      await request.send();
      // Requests asked again in a row: a run that cannot make progress keeps answering from its last state, and a
      // waiter must not flood it with new requests.
      for (let askedAgain = 0; ; askedAgain++) {
        const lease = await this.leaseFor(await this.wait(request, params, signal), request, params, telemetry);
        if (lease) return lease;
        if (askedAgain > 0)
          await sleep(Math.min(ASK_AGAIN_MAX, ASK_AGAIN_MIN * 2 ** askedAgain), undefined, { signal });
        await request.sendAgain();
      }
    } catch (error) {
      // Whatever ended the wait, a request the workflow has must never be granted later.
      if (request.accepted) await request.withdraw();
      if (!signal.aborted || error instanceof ServerUnavailableError) {
        telemetry.failed('error', error);
        throw error;
      }
      const timedOut = signal.reason === timeout?.reason;
      telemetry.failed(timedOut ? 'timeout' : 'aborted', signal.reason);
      throw timedOut ? new LockTimeoutError(resourceId, params.waitTimeout!) : signal.reason;
    }
  }

  private wait(request: LockRequest, params: AcquireParams, signal: AbortSignal): Promise<WaitOutcome> {
    const { workflowId, slots, waitTimeout } = params;
    let room = this.rooms.get(workflowId);
    if (!room) {
      room = new WaitingRoom(this.context.openRuns, workflowId, () => this.rooms.delete(workflowId));
      this.rooms.set(workflowId, room);
    }
    const budget = waitTimeout ?? UNAVAILABLE_BUDGET;
    return room.wait(request.requestId, { slots, signal, budget, outlastSlowRuns: waitTimeout === undefined });
  }

  /**
   * The lease for a granted request, or `undefined` when the request must be asked again: unknown to the running
   * workflow (its grant lapsed before it was claimed, or the run that had it is gone), or granted but answered too
   * late to be claimed (then given back, if it is still held).
   */
  private async leaseFor(outcome: WaitOutcome, request: LockRequest, params: AcquireParams, telemetry: LockWait) {
    const { resourceId, limit, ttl, autoRenew } = params;
    if (outcome.state === 'rejected') {
      const { activeLimit } = outcome;
      if (limit === READ_WRITE || activeLimit === READ_WRITE)
        throw new LockModeMismatchError(resourceId, limit === READ_WRITE);
      throw new LimitMismatchError(resourceId, limit, activeLimit);
    }
    if (outcome.state === 'unknown') return undefined;
    const handle = this.context.client.workflow.getHandle(params.workflowId);
    const { requestId } = request;
    const init = { handle, resourceId, requestId, token: outcome.token, ttl, autoRenew, onEnd: telemetry.leaseEnded };
    const lease = await ClientLease.fromGrant(init, outcome);
    if (!lease) await request.withdraw();
    else this.holds.set(lease, telemetry.granted(lease.token));
    return lease;
  }

  /** Runs `fn` as the critical section of `lease`: inside its hold's span, if it was granted here. */
  private critical<L extends Lease, T>(lease: L, fn: (lease: L) => T | Promise<T>): () => T | Promise<T> {
    const hold = this.holds.get(lease);
    return () => (hold ? hold.within(() => fn(lease)) : fn(lease));
  }

  async withSemaphore<T>(
    resourceId: string,
    limit: number,
    fn: (lease: Lease) => T | Promise<T>,
    options: LockOptions = {},
  ): Promise<T> {
    positiveInteger('limit', limit);
    checkFunction(fn);
    const lease = await this.acquire(resourceId, { ...options, limit });
    return runThenRelease(lease, this.critical(lease, fn));
  }

  async withMode<T>(
    resourceId: string,
    mode: LockMode,
    fn: (lease: Lease) => T | Promise<T>,
    options: LockOptions = {},
  ): Promise<T> {
    checkFunction(fn);
    const lease = await this.acquire(resourceId, { ...options, mode });
    return runThenRelease(lease, this.critical(lease, fn));
  }

  async tryAcquire(resourceId: string, options: TryAcquireOptions = {}): Promise<Lease | undefined> {
    checkKnownOptions(options, knownTryAcquireOptions);
    const params = acquireParams(resourceId, options, this.prefix);
    params.signal?.throwIfAborted();
    const request = new LockRequest(this.context.client, this.context.taskQueue, params);
    try {
      const telemetry = this.telemetry.waitFor(resourceId, lockKind(params), false);
      return await this.leaseFor(await request.tryNow(), request, params, telemetry);
    } catch (error) {
      // Whatever went wrong, a request the workflow may have must never be granted later.
      await request.withdraw();
      throw error;
    }
  }

  /** Takes the locks one at a time in `lockOrder`, each waiting at most what is left of `waitTimeout`. */
  async acquireAll(resourceIds: readonly string[], options: AcquireAllOptions = {}): Promise<LeaseSet> {
    const ordered = lockOrder(resourceIds);
    checkKnownOptions(options, knownAcquireAllOptions);
    // Every ID and option is checked before anything is sent.
    const { waitTimeout } = ordered.map((resourceId) => acquireParams(resourceId, options, this.prefix))[0]!;
    const deadline = waitTimeout === undefined ? undefined : performance.now() + waitTimeout;
    const leases: Lease[] = [];
    try {
      for (const resourceId of ordered) {
        const left = deadline === undefined ? undefined : Math.max(1, deadline - performance.now());
        leases.push(await this.acquire(resourceId, { ...options, waitTimeout: left }));
      }
    } catch (error) {
      // Not released in time, a lease lapses at its ttl anyway: the wait's own error is the one to report.
      await releaseAll(leases).catch(() => {});
      throw error instanceof LockTimeoutError ? new LockTimeoutError(error.resourceId, waitTimeout!) : error;
    }
    return new ClientLeaseSet(leases);
  }

  async withLocks<T>(
    resourceIds: readonly string[],
    fn: (leases: LeaseSet) => T | Promise<T>,
    options: LockOptions = {},
  ): Promise<T> {
    checkFunction(fn);
    const leases = await this.acquireAll(resourceIds, options);
    return runThenRelease(leases, () => fn(leases));
  }

  async lockStatus(resourceId: string): Promise<LockStatusResult> {
    checkResourceId('resourceId', resourceId, this.prefix);
    try {
      // A closed run is never asked (NOT_OPEN): one query, no describe first.
      const status = await this.context.openRuns.getHandle(this.prefix + resourceId).query(lockStatusQuery);
      return {
        resourceId,
        running: true,
        limit: status.limit,
        holders: status.holders.map((holder) => ({ ...holder, expiresAt: new Date(holder.expiresAt) })),
        waiting: status.waiting,
        forcedReleases: status.forcedReleases.map((release) => ({ ...release, at: new Date(release.at) })),
      };
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError || error instanceof QueryRejectedError)) throw error;
      return { resourceId, running: false, limit: undefined, holders: [], waiting: 0, forcedReleases: [] };
    }
  }

  async forceRelease(
    resourceId: string,
    token: number,
    options: ForceReleaseOptions = {},
  ): Promise<{ released: boolean }> {
    checkResourceId('resourceId', resourceId, this.prefix);
    if (!Number.isSafeInteger(token) || token < 1) {
      throw new RangeError(`Expected \`token\` to be a positive integer (a fencing token), got \`${String(token)}\``);
    }
    const reason = optionalString('reason', options.reason) ?? 'forced release';
    const signal = optionalSignal('signal', options.signal);
    const { client } = this.context;
    const handle = client.workflow.getHandle(this.prefix + resourceId);
    const update = () => handle.executeUpdate(forceReleaseUpdate, { args: [{ token, reason }] });
    try {
      return await retryTransient('forceRelease', () => (signal ? client.withAbortSignal(signal, update) : update()), {
        signal,
        budget: UNAVAILABLE_BUDGET,
        retryIf: (error) => isTransient(error) || isBusy(error),
      });
    } catch (error) {
      // No running workflow: nothing is held.
      if (error instanceof WorkflowNotFoundError) return { released: false };
      throw error;
    }
  }
}
