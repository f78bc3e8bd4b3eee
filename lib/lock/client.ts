import { randomUUID } from 'node:crypto';
import { QueryRejectedError, WorkflowClient, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { Context } from '../context.js';
import { checkKnownOptions, optionalPositiveDuration, positiveDuration, positiveInteger } from '../duration.js';
import { LimitMismatchError, LockTimeoutError, ServerUnavailableError } from '../errors.js';
import { checkResourceId, lockIdPrefix } from '../ids.js';
import { isBusy, isTaskFailing, isTransient, isUnreachable, retryTransient } from '../rpc.js';
import {
  acquireSignal,
  awaitGrantUpdate,
  forceReleaseUpdate,
  lockStatusQuery,
  withdrawSignal,
} from '../workflows/definitions.js';
import type { ForcedRelease, RequestState } from '../workflows/lock-core.js';
import { headSlots } from '../workflows/lock-protocol.js';
import { lockWorkflow } from '../workflows/lock-workflow.js';
import { HeadWatcher } from './head-watcher.js';
import { ClientLease, type Lease } from './lease.js';
import { StateBatcher } from './state-batcher.js';
import type { AcquireOptions, LockOptions } from './options.js';

export type { Lease } from './lease.js';

const DEFAULT_TTL = 30_000;
/** How long requests are retried while the server is unreachable, unless `waitTimeout` says otherwise. */
const UNAVAILABLE_BUDGET = 60_000;
/** A request is given at least this long, so a short `waitTimeout` on a busy server times out rather than fails. */
const MIN_REQUEST_BUDGET = 5_000;
/** How long the withdrawal of an abandoned request may be retried. */
const WITHDRAW_BUDGET = 10_000;
/** About how long a waiter near the head waits before it blocks again after its blocking wait was turned away as busy. */
const BUSY_RETRY = 10;
/** Bounds of the backoff between requests asked again in a row. */
const ASK_AGAIN_MIN = 20;
const ASK_AGAIN_MAX = 2_000;
/** While a process has waiters on a resource, it checks this often that the resource's workflow still makes progress. */
const STUCK_CHECK = 10_000;
/**
 * A run whose workflow task failed this many times with no success in between is stuck for good, and is terminated:
 * as one task's attempts (the server records only the first failure), or as failures of new tasks (new events reset
 * the attempt count, and each new task's failure is recorded).
 */
const STUCK_FAILURES = 3;
/** How many of a run's latest events are read to count its failed workflow tasks. */
const STUCK_LOOKBACK = 200;

export interface LockStatusResult {
  readonly resourceId: string;
  /** Whether a workflow is running for the resource; an idle resource has none and reports no holders. */
  readonly running: boolean;
  /** The running limit (1 for a lock), or `undefined` when idle. */
  readonly limit: number | undefined;
  readonly holders: readonly { readonly token: number; readonly expiresAt: Date; readonly claimed: boolean }[];
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
  /** Waits for a slot of `resourceId` and returns its lease, which renews until released (`await using` works). */
  acquire(resourceId: string, options?: AcquireOptions): Promise<Lease>;
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

const knownOptions = new Set(['ttl', 'waitTimeout', 'signal', 'limit', 'autoRenew']);

function checkOptions(options: unknown): asserts options is AcquireOptions {
  checkKnownOptions(options, knownOptions);
  const { signal, autoRenew } = options as AcquireOptions;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError('Expected `signal` to be an AbortSignal');
  }
  if (autoRenew !== undefined && typeof autoRenew !== 'boolean') {
    throw new TypeError(`Expected \`autoRenew\` to be a boolean, got \`${String(autoRenew)}\` (${typeof autoRenew})`);
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Combines the caller's signal and the wait budget into one signal; `dispose` removes the listener and the timer. */
function waitSignal(resourceId: string, options: LockOptions, waitTimeout: number | undefined) {
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal!.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    waitTimeout === undefined
      ? undefined
      : setTimeout(() => controller.abort(new LockTimeoutError(resourceId, waitTimeout)), waitTimeout);
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    },
  };
}

export function createLockApi(context: Context): LockApi {
  const { client, taskQueue } = context;
  const prefix = lockIdPrefix(context.idPrefix);
  // Blocking waits this process has open per workflow: it never takes more than the head slots, so a burst of local
  // waiters cannot exhaust the server's 10 in-flight updates per workflow.
  const blockingWaits = new Map<string, number>();

  async function awaitGrant(
    handle: WorkflowHandle,
    requestId: string,
    slots: number,
    signal: AbortSignal,
  ): Promise<RequestState | undefined> {
    const open = blockingWaits.get(handle.workflowId) ?? 0;
    if (open >= slots) return undefined;
    blockingWaits.set(handle.workflowId, open + 1);
    try {
      // A signal of its own per call: the SDK adds an abort listener to the signal it is given and never removes it.
      const attempt = new AbortController();
      const abort = () => attempt.abort(signal.reason);
      signal.addEventListener('abort', abort, { once: true });
      try {
        return await client.withAbortSignal(attempt.signal, () =>
          handle.executeUpdate(awaitGrantUpdate, { args: [requestId] }),
        );
      } finally {
        signal.removeEventListener('abort', abort);
      }
    } catch (error) {
      signal.throwIfAborted();
      // Turned away as busy: the refusal carries the request's state, so a grant needs no query; still waiting near
      // the head, the caller blocks again after a moment.
      if (isBusy(error)) {
        const state = error.cause.details?.[0] as RequestState | undefined;
        if (state?.state === 'waiting') await delay(BUSY_RETRY * (0.5 + Math.random()), signal);
        return state;
      }
      // Turned away by the validator (not near the head yet), caught in a run's hand-over to the next, or the server
      // is unreachable: the query path finds out which, and retries what is worth retrying.
      return undefined;
    } finally {
      const left = blockingWaits.get(handle.workflowId)! - 1;
      if (left === 0) blockingWaits.delete(handle.workflowId);
      else blockingWaits.set(handle.workflowId, left);
    }
  }

  // Request states and statuses are read from running workflows only (see StateBatcher).
  const openRuns = new WorkflowClient({
    connection: client.connection,
    namespace: client.options.namespace,
    dataConverter: client.options.dataConverter,
    identity: client.options.identity,
    interceptors: client.options.interceptors.workflow,
    queryRejectCondition: 'NOT_OPEN',
  });
  /**
   * A run whose workflow task fails again and again makes no progress and never will: its worker cannot replay its
   * history (a nondeterminism error a worker not set up with `workflowFailureErrorTypes` retries forever, or a
   * completion the server refuses, which the Temporal SDK 1.24 has been seen to send after a worker died mid-task).
   * Waiters terminate such a run, as an operator would; the next request starts a new run. One check per resource
   * and process, only while the process has waiters there.
   */
  const watchdogs = new Map<string, { waiters: number; readonly timer: NodeJS.Timeout }>();
  async function terminateIfStuck(workflowId: string): Promise<void> {
    const { status, runId, raw } = await client.workflow.getHandle(workflowId).describe();
    if (status.name !== 'RUNNING') return;
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
    if (failures < STUCK_FAILURES) return;
    // That run only: a new one may have started since.
    await client.workflow
      .getHandle(workflowId, runId)
      .terminate(`temporal-coordination: ${failures} workflow tasks failed in a row; a new run takes over`);
  }
  function watch(workflowId: string): () => void {
    let watchdog = watchdogs.get(workflowId);
    if (!watchdog) {
      const timer = setInterval(() => void terminateIfStuck(workflowId).catch(() => {}), STUCK_CHECK);
      timer.unref();
      watchdog = { waiters: 0, timer };
      watchdogs.set(workflowId, watchdog);
    }
    watchdog.waiters++;
    return () => {
      if (--watchdog.waiters > 0) return;
      clearInterval(watchdog.timer);
      watchdogs.delete(workflowId);
    };
  }

  const headWatchers = new Map<string, HeadWatcher>();
  /** Whether a far-back waiter may block now (see HeadWatcher); false: look at its state with a query. */
  function mayBlock(
    workflowId: string,
    { position, ticket, handoffEstimate }: Extract<RequestState, { state: 'waiting' }>,
    slots: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    let watcher = headWatchers.get(workflowId);
    if (!watcher) {
      watcher = new HeadWatcher(client.workflow, workflowId, () => headWatchers.delete(workflowId));
      headWatchers.set(workflowId, watcher);
    }
    return watcher.mayBlock({ ticket, position, slots, handoffEstimate }, signal);
  }

  const batchers = new Map<string, StateBatcher>();
  function queryState(handle: WorkflowHandle, requestId: string, signal: AbortSignal): Promise<RequestState> {
    let batcher = batchers.get(handle.workflowId);
    if (!batcher) {
      batcher = new StateBatcher(openRuns, handle.workflowId, () => batchers.delete(handle.workflowId));
      batchers.set(handle.workflowId, batcher);
    }
    return batcher.state(requestId, signal);
  }

  async function acquire(resourceId: string, options: AcquireOptions = {}): Promise<Lease> {
    checkResourceId('resourceId', resourceId, prefix);
    checkOptions(options);
    const ttl = optionalPositiveDuration('ttl', options.ttl, DEFAULT_TTL);
    const waitTimeout =
      options.waitTimeout === undefined ? undefined : positiveDuration('waitTimeout', options.waitTimeout);
    const limit = options.limit === undefined ? 1 : positiveInteger('limit', options.limit);
    const slots = headSlots(limit);
    options.signal?.throwIfAborted();

    const workflowId = prefix + resourceId;
    const handle = client.workflow.getHandle(workflowId);
    const wait = waitSignal(resourceId, options, waitTimeout);
    const budget = waitTimeout ?? UNAVAILABLE_BUDGET;
    let requestId = randomUUID();
    const request = () =>
      retryTransient(
        'acquire',
        () =>
          client.workflow.signalWithStart(lockWorkflow, {
            workflowId,
            taskQueue,
            args: [{}],
            signal: acquireSignal,
            signalArgs: [{ requestId, ttl, limit }],
          }),
        // Not the wait signal: a server unreachable for the whole wait budget is reported as such, not as a timeout.
        {
          signal: options.signal,
          budget: Math.max(waitTimeout ?? UNAVAILABLE_BUDGET, MIN_REQUEST_BUDGET),
          connection: client.connection,
        },
      );
    /**
     * Reads the request's state. A run whose tasks fail answers no query until it fails (workflowFailureErrorTypes) or
     * is terminated (see watch), and one whose task is stuck on a dead worker answers after up to 30 s: without a
     * waitTimeout, only an unreachable server ends the wait.
     */
    const readState = async (): Promise<RequestState> => {
      for (;;) {
        try {
          return await retryTransient('requestState', () => queryState(handle, requestId, wait.signal), {
            signal: wait.signal,
            budget,
            retryIf: (error) => isTransient(error) || isTaskFailing(error),
          });
        } catch (error) {
          const slowRun = error instanceof ServerUnavailableError && !isUnreachable(error.cause);
          if (waitTimeout !== undefined || !slowRun) throw error;
        }
      }
    };
    let accepted = false;
    const unwatch = watch(workflowId);
    try {
      await request();
      accepted = true;
      // The first look is a query, never a blocking update: a query is answered after the task that handles the
      // signal, costs no history and is never counted against the workflow's 10 updates in flight. An update the
      // server turns away at that limit makes it drop the workflow's cached state, which aborts every other update
      // waiting on it and the workflow task in flight (Temporal 1.29): a guess that this waiter is near the head must
      // never be what tips it over.
      // Requests asked again in a row: a run that cannot make progress (its tasks fail) keeps answering from its last
      // state, and a waiter must not flood it with new requests.
      let askedAgain = 0;
      for (let blocking = false; ;) {
        wait.signal.throwIfAborted();
        const state: RequestState =
          (blocking ? await awaitGrant(handle, requestId, slots, wait.signal) : undefined) ??
          // The wait ends the query too (with no worker to answer, it would hang), unless other waiters share it.
          (await readState());
        switch (state.state) {
          case 'rejected':
            throw new LimitMismatchError(resourceId, limit, state.activeLimit);
          case 'waiting':
            askedAgain = 0;
            blocking = state.position < slots || (await mayBlock(workflowId, state, slots, wait.signal));
            break;
          case 'granted': {
            const lease = await ClientLease.fromGrant(
              { handle, resourceId, requestId, token: state.token, ttl, autoRenew: options.autoRenew ?? true },
              state,
            );
            if (lease) return lease;
            // Its answer came late and the grant lapsed or could not be claimed in time: give it back (if it is still
            // held) and ask again, as below.
            await withdraw(handle, requestId);
          }
          // falls through
          case 'unknown':
            // The grant lapsed before it was claimed (this process was too slow), or the run that had the request
            // is gone: ask again, as a new request at the back of the queue; again and again, more and more slowly.
            if (askedAgain++ > 0) await delay(Math.min(ASK_AGAIN_MAX, ASK_AGAIN_MIN * 2 ** askedAgain), wait.signal);
            requestId = randomUUID();
            await request();
            blocking = false;
            break;
        }
      }
    } catch (error) {
      // Whatever ended the wait, a request the workflow has must never be granted later.
      if (accepted) await withdraw(handle, requestId);
      if (wait.signal.aborted && !(error instanceof ServerUnavailableError)) throw wait.signal.reason;
      throw error;
    } finally {
      unwatch();
      wait.dispose();
    }
  }

  /** Best effort: a waiter that gives up must never be granted later (a grant that raced it is released). */
  async function withdraw(handle: WorkflowHandle, requestId: string): Promise<void> {
    try {
      await retryTransient('withdraw', () => handle.signal(withdrawSignal, { requestId }), { budget: WITHDRAW_BUDGET });
    } catch {
      // Unreachable or closed: an unclaimed grant lapses after the claim window anyway.
    }
  }

  async function withSemaphore<T>(
    resourceId: string,
    limit: number,
    fn: (lease: Lease) => T | Promise<T>,
    options: LockOptions = {},
  ): Promise<T> {
    positiveInteger('limit', limit);
    if (typeof fn !== 'function') throw new TypeError(`Expected \`fn\` to be a function, got ${typeof fn}`);
    const lease = await acquire(resourceId, { ...options, limit });
    let result: T;
    try {
      result = await fn(lease);
    } catch (error) {
      await lease.release().catch((releaseError: unknown) => {
        if (typeof error === 'object' && error !== null) {
          Object.defineProperty(error, 'suppressed', { value: releaseError, configurable: true });
        }
      });
      throw error;
    }
    await lease.release();
    return result;
  }

  return {
    acquire,
    withSemaphore,
    withLock: (resourceId, fn, options) => withSemaphore(resourceId, 1, fn, options),
    async lockStatus(resourceId) {
      checkResourceId('resourceId', resourceId, prefix);
      const idle = { resourceId, running: false, limit: undefined, holders: [], waiting: 0, forcedReleases: [] };
      try {
        // A closed run is never asked (NOT_OPEN): one query, no describe first.
        const { limit, holders, waiting, forcedReleases } = await openRuns
          .getHandle(prefix + resourceId)
          .query(lockStatusQuery);
        return {
          resourceId,
          running: true,
          limit,
          holders: holders.map((holder) => ({ ...holder, expiresAt: new Date(holder.expiresAt) })),
          waiting,
          forcedReleases: forcedReleases.map((release: ForcedRelease) => ({ ...release, at: new Date(release.at) })),
        };
      } catch (error) {
        if (error instanceof WorkflowNotFoundError || error instanceof QueryRejectedError) return idle;
        throw error;
      }
    },
    async forceRelease(resourceId, token, options = {}) {
      checkResourceId('resourceId', resourceId, prefix);
      if (!Number.isSafeInteger(token) || token < 1) {
        throw new RangeError(`Expected \`token\` to be a positive integer (a fencing token), got \`${String(token)}\``);
      }
      const { reason = 'forced release', signal } = options;
      if (typeof reason !== 'string') throw new TypeError(`Expected \`reason\` to be a string, got ${typeof reason}`);
      if (signal !== undefined && !(signal instanceof AbortSignal)) {
        throw new TypeError('Expected `signal` to be an AbortSignal');
      }
      const handle = client.workflow.getHandle(prefix + resourceId);
      const update = () => handle.executeUpdate(forceReleaseUpdate, { args: [{ token, reason }] });
      try {
        return await retryTransient(
          'forceRelease',
          () => (signal ? client.withAbortSignal(signal, update) : update()),
          { signal, budget: UNAVAILABLE_BUDGET, retryIf: (error) => isTransient(error) || isBusy(error) },
        );
      } catch (error) {
        // No running workflow: nothing is held.
        if (error instanceof WorkflowNotFoundError) return { released: false };
        throw error;
      }
    },
  };
}
