// `withLock` for workflow code: the same lock workflow, queue and token sequence as clients use. Requests go out through
// activities (a workflow cannot send signals-with-start itself); the grant comes back as a signal, so nothing polls.
import type { Duration } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  uuid4,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { checkKnownOptions, optionalPositiveDuration, optionalString, positiveDuration } from '../options.js';
import { failureTypes, failures } from '../errors.js';
import {
  DEFAULT_ID_PREFIX,
  DEFAULT_TASK_QUEUE,
  checkResourceId,
  electionIdPrefix,
  lockIdPrefix,
  lockOrder,
} from '../ids.js';
import { acquireAnswerSignal } from './definitions.js';
import type { AcquireRequest, Decided, LockMode, Notification } from './lock-core.js';
import { DEFAULT_TTL, READ_WRITE } from './lock-protocol.js';
import { requestActivityNames as names, type RequestActivities } from './requests.js';

/** The withdrawal of an abandoned request is tried this long; an unclaimed grant lapses after the claim window anyway. */
const WITHDRAW_BUDGET = 60_000;
const ATTEMPT_TIMEOUT = 10_000;
const retry = { initialInterval: 100, backoffCoefficient: 2, maximumInterval: 2_000 } as const;

export interface WorkflowLockOptions {
  /**
   * How long a grant stays valid without renewal. `withLock` renews it about every `ttl / 3` with an activity while
   * `fn` runs; if the workflow is terminated while holding, the lock passes on at most `ttl` after the last renewal.
   * @default '30s'
   */
  readonly ttl?: Duration;
  /**
   * How long to wait for the grant before giving up with an `ApplicationFailure` of type
   * `TemporalCoordination.LockTimeout`. The request is withdrawn, so it is never granted later.
   * @default undefined (wait as long as it takes)
   */
  readonly waitTimeout?: Duration;
  /**
   * Task queue of the coordination worker: the request activities run there, and start the lock workflow there.
   * @default 'temporal-coordination'
   */
  readonly taskQueue?: string;
  /**
   * Prefix of the lock workflow's ID; must match the `idPrefix` of the clients that share the lock.
   * @default 'temporal-coordination/'
   */
  readonly idPrefix?: string;
}

/** A granted slot, as `withLock` hands it to its critical section in workflow code. */
export interface WorkflowLease {
  readonly resourceId: string;
  /** Fencing token: strictly increases with every grant of this resource, whoever requested it. */
  readonly token: number;
  /** When the lease lapses unless renewed, in workflow time (measured conservatively from the last renewal sent). */
  readonly expiresAt: Date;
  /** Whether the lease was lost (a renewal was rejected or did not land in time); the section is cancelled then. */
  readonly lost: boolean;
}

interface Lock {
  readonly resourceId: string;
  readonly workflowId: string;
  readonly taskQueue: string;
  readonly ttl: number;
  /** The caller's wait budget, and the workflow time at which it runs out (shared by the locks of one set). */
  readonly waitTimeout: number | undefined;
  readonly deadline: number | undefined;
  /** 1, or `READ_WRITE` with the `mode` of this request. */
  readonly limit: number;
  readonly mode?: LockMode;
  /** Set for an election: its workflow logs leader changes, and `value` is this candidate's. */
  readonly election?: boolean;
  readonly value?: string;
}

interface Grant {
  readonly requestId: string;
  readonly token: number;
  /** Workflow time at which the lease lapses unless renewed. */
  readonly expiresAt: number;
}

type Answer = Notification['answer'];

// Module state is per workflow execution: the SDK gives every run its own copy of each bundled module.
/** Requests this workflow is waiting on, with their answer once it came. */
const awaiting = new Map<string, Answer | undefined>();
let listening = false;

function listen(): void {
  if (listening) return;
  listening = true;
  // An answer to a request no longer awaited (withdrawn, abandoned) is dropped: the withdrawal frees its grant.
  setHandler(acquireAnswerSignal, ({ requestId, answer }) => {
    if (awaiting.has(requestId)) awaiting.set(requestId, answer);
  });
}

function activities(taskQueue: string, options: ActivityOptions): RequestActivities {
  return proxyActivities<RequestActivities>({ taskQueue, retry, ...options });
}

const knownOptions = new Set(['ttl', 'waitTimeout', 'taskQueue', 'idPrefix']);
const knownTryOptions = new Set(['ttl', 'taskQueue', 'idPrefix']);
const knownLeadershipOptions = new Set([...knownOptions, 'value']);

function checkOptions(options: unknown): asserts options is WorkflowLockOptions {
  checkKnownOptions(options, knownOptions);
  const { taskQueue, idPrefix } = options as WorkflowLockOptions;
  if (taskQueue !== undefined && (typeof taskQueue !== 'string' || taskQueue === '')) {
    throw new TypeError(`Expected \`taskQueue\` to be a non-empty string, got \`${String(taskQueue)}\``);
  }
  optionalString('idPrefix', idPrefix);
}

function lockTimeout(lock: Lock): ApplicationFailure {
  return failures.lockTimeout(lock.resourceId, lock.waitTimeout!);
}

function isLeaseLost(error: unknown): boolean {
  return (
    error instanceof ActivityFailure &&
    error.cause instanceof ApplicationFailure &&
    error.cause.type === failureTypes.leaseLost
  );
}

/** Renews (or, the first time, claims) a lease; fails if the lock says no, or no answer lands within `budget` ms. */
function renew(lock: Lock, requestId: string, token: number, budget: number): Promise<number> {
  const timeout = Math.max(1, budget);
  const { [names.renew]: renewActivity } = activities(lock.taskQueue, {
    scheduleToCloseTimeout: timeout,
    startToCloseTimeout: Math.min(timeout, ATTEMPT_TIMEOUT),
    retry: { ...retry, nonRetryableErrorTypes: [failureTypes.leaseLost] },
  });
  return renewActivity({ workflowId: lock.workflowId, requestId, token });
}

/** Takes a request back, granted or not, whatever the caller's cancellation state. Best effort. */
async function withdraw(lock: Lock, requestId: string): Promise<void> {
  const { [names.withdraw]: withdrawActivity } = activities(lock.taskQueue, {
    scheduleToCloseTimeout: WITHDRAW_BUDGET,
    startToCloseTimeout: ATTEMPT_TIMEOUT,
  });
  try {
    await CancellationScope.nonCancellable(() => withdrawActivity({ workflowId: lock.workflowId, requestId }));
  } catch {
    // Never delivered: a grant made to this request lapses after the claim window.
  }
}

/** Frees the slot, whatever the caller's cancellation state; returns the failure, if any. */
async function release(lock: Lock, grant: Grant): Promise<unknown> {
  const { [names.release]: releaseActivity } = activities(lock.taskQueue, {
    // Past the ttl the lease lapses by itself.
    scheduleToCloseTimeout: lock.ttl,
    startToCloseTimeout: Math.min(lock.ttl, ATTEMPT_TIMEOUT),
  });
  try {
    await CancellationScope.nonCancellable(() =>
      releaseActivity({ workflowId: lock.workflowId, requestId: grant.requestId, token: grant.token }),
    );
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Queues a request, waits for its answer (a signal), and claims the grant; withdraws the request if anything fails. */
async function acquire(lock: Lock): Promise<Grant> {
  listen();
  const { workflowId } = workflowInfo();
  const { deadline } = lock;
  for (;;) {
    const requestId = uuid4();
    let answer: Answer;
    awaiting.set(requestId, undefined);
    try {
      const request = { ...requestOf(lock, requestId), notify: { workflowId } };
      const answered = () => awaiting.get(requestId) !== undefined;
      // With a `waitTimeout`, the request itself must also land in time (the coordination worker may be down).
      const budget = deadline === undefined ? undefined : Math.max(1, deadline - Date.now());
      const { [names.acquire]: acquireActivity } = activities(lock.taskQueue, {
        startToCloseTimeout: Math.min(budget ?? ATTEMPT_TIMEOUT, ATTEMPT_TIMEOUT),
        ...(budget === undefined ? {} : { scheduleToCloseTimeout: budget }),
      });
      await acquireActivity({ workflowId: lock.workflowId, request, ...(lock.election ? { election: true } : {}) });
      if (deadline === undefined) await condition(answered);
      else if (!(await condition(answered, Math.max(1, deadline - Date.now())))) throw lockTimeout(lock);
      answer = awaiting.get(requestId)!;
    } catch (error) {
      // Cancelled or out of time: the request must never be granted later (one granted meanwhile is released).
      await withdraw(lock, requestId);
      if (error instanceof ActivityFailure && error.cause instanceof TimeoutFailure) throw lockTimeout(lock);
      throw error;
    } finally {
      awaiting.delete(requestId);
    }
    const grant = await claim(lock, requestId, answer);
    // Undefined if the grant lapsed before this workflow could claim it (its worker was slow to see it): ask again,
    // at the back.
    if (grant) return grant;
  }
}

/**
 * Claims a granted request with its first renewal (until it lands, the lock keeps the grant only for the claim window);
 * `undefined` if the grant lapsed first or was refused. Throws the limit mismatch of a rejected request.
 */
async function claim(lock: Lock, requestId: string, answer: Decided): Promise<Grant | undefined> {
  if (answer.state === 'rejected') {
    const { resourceId, limit } = lock;
    if (limit === READ_WRITE || answer.activeLimit === READ_WRITE) {
      throw failures.modeMismatch(resourceId, limit === READ_WRITE);
    }
    throw failures.limitMismatch(resourceId, limit, answer.activeLimit);
  }
  if (answer.state !== 'granted') return undefined;
  const sentAt = Date.now();
  try {
    const expiresIn = await renew(lock, requestId, answer.token, answer.expiresIn);
    return { requestId, token: answer.token, expiresAt: sentAt + expiresIn };
  } catch (error) {
    if (!isLeaseLost(error)) await withdraw(lock, requestId);
    if (isCancellation(error)) throw error;
    return undefined;
  }
}

/** What the lock workflow is asked for, under `requestId`. */
function requestOf({ ttl, limit, mode, value }: Lock, requestId: string): AcquireRequest {
  return { requestId, ttl, limit, ...(mode && { mode }), ...(value !== undefined && { value }) };
}

/** Asks for a slot now, never queued: the claimed grant, or `undefined` if the resource is not free. */
async function tryAcquire(lock: Lock): Promise<Grant | undefined> {
  const requestId = uuid4();
  const { [names.tryAcquire]: tryActivity } = activities(lock.taskQueue, { startToCloseTimeout: ATTEMPT_TIMEOUT });
  let answer: Decided;
  try {
    answer = await tryActivity({
      workflowId: lock.workflowId,
      request: requestOf(lock, requestId),
    });
  } catch (error) {
    // Cancelled, or never answered: a grant made to this request must not outlive it.
    await withdraw(lock, requestId);
    throw error;
  }
  return claim(lock, requestId, answer);
}

/** Runs `fn` while renewing the lease, then releases it, on every path. */
async function hold<T>(lock: Lock, grant: Grant, fn: (lease: WorkflowLease) => T | Promise<T>): Promise<T> {
  let expiresAt = grant.expiresAt;
  let lostBecause: unknown;
  const section = new CancellationScope();
  const renewals = new CancellationScope();
  const lease: WorkflowLease = {
    resourceId: lock.resourceId,
    token: grant.token,
    get expiresAt() {
      return new Date(expiresAt);
    },
    get lost() {
      return lostBecause !== undefined;
    },
  };
  const renewing = renewals
    .run(async () => {
      for (;;) {
        await sleep(Math.max(1, Math.floor(lock.ttl / 3)));
        const sentAt = Date.now();
        const expiresIn = await renew(lock, grant.requestId, grant.token, expiresAt - sentAt);
        expiresAt = sentAt + Math.min(expiresIn, lock.ttl);
      }
    })
    .catch((error: unknown) => {
      if (isCancellation(error)) return;
      // Rejected, or not renewed before the lease ran out: the section must not go on trusting it.
      lostBecause = error;
      section.cancel();
    });

  const stopRenewing = async () => {
    renewals.cancel();
    await renewing;
  };
  let result: T;
  try {
    result = await section.run(async () => fn(lease));
  } catch (error) {
    await stopRenewing();
    const releaseError = await release(lock, grant);
    if (lostBecause !== undefined && isCancellation(error)) {
      throw failures.leaseLost(grant.token, {
        resourceId: lock.resourceId,
        ...(lostBecause instanceof Error ? { cause: lostBecause } : {}),
      });
    }
    // The section's error wins; a failed release is attached to it.
    if (releaseError !== undefined && typeof error === 'object' && error !== null) {
      Object.defineProperty(error, 'suppressed', { value: releaseError, configurable: true });
    }
    throw error;
  }
  await stopRenewing();
  const releaseError = await release(lock, grant);
  if (releaseError !== undefined) throw releaseError;
  return result;
}

/**
 * Runs `fn` in workflow code while holding the lock on `resourceId`, and returns what `fn` returns. Workflow and client
 * requesters share one FIFO queue and one token sequence. The lease is claimed before `fn` starts, renewed about every
 * `ttl / 3` while it runs, and released when it completes, throws or is cancelled. If the lease is lost while `fn`
 * runs, `fn`'s cancellation scope is cancelled and `withLock` throws an `ApplicationFailure` of type
 * `TemporalCoordination.LeaseLost`. Cancelling the workflow while it waits, or `waitTimeout`, withdraws the request.
 *
 * Needs a worker made with `createWorker` (or one that registers `createActivities()`) polling `options.taskQueue`.
 */
export async function withLock<T>(
  resourceId: string,
  fn: (lease: WorkflowLease) => T | Promise<T>,
  options: WorkflowLockOptions = {},
): Promise<T> {
  const lock = lockOf(resourceId, options, Date.now());
  checkFunction(fn);
  return hold(lock, await acquire(lock), fn);
}

/**
 * Runs `fn` in workflow code while holding `resourceId` as one of its readers (a read-write lock: many readers, or one
 * writer, granted in arrival order), as `withLock` holds a lock; returns what `fn` returns. Client and workflow
 * requesters share one queue.
 */
export function withReadLock<T>(
  resourceId: string,
  fn: (lease: WorkflowLease) => T | Promise<T>,
  options: WorkflowLockOptions = {},
): Promise<T> {
  return withMode(resourceId, 'read', fn, options);
}

/** Runs `fn` in workflow code while holding `resourceId` as its one writer (no reader beside it), like `withReadLock`. */
export function withWriteLock<T>(
  resourceId: string,
  fn: (lease: WorkflowLease) => T | Promise<T>,
  options: WorkflowLockOptions = {},
): Promise<T> {
  return withMode(resourceId, 'write', fn, options);
}

async function withMode<T>(
  resourceId: string,
  mode: LockMode,
  fn: (lease: WorkflowLease) => T | Promise<T>,
  options: WorkflowLockOptions,
): Promise<T> {
  const lock = { ...lockOf(resourceId, options, Date.now()), limit: READ_WRITE, mode };
  checkFunction(fn);
  return hold(lock, await acquire(lock), fn);
}

/** What `tryWithLock` resolves to: whether the lock was free, and then what `fn` returned. */
export type TryWithLockResult<T> = { readonly acquired: true; readonly value: T } | { readonly acquired: false };

/**
 * `withLock` if the lock is free and nobody waits: runs `fn` holding it and resolves `{ acquired: true, value }`;
 * otherwise resolves `{ acquired: false }` at once, and the request never joins the queue or is granted later. Options
 * are those of `withLock` but `waitTimeout`.
 */
export async function tryWithLock<T>(
  resourceId: string,
  fn: (lease: WorkflowLease) => T | Promise<T>,
  options: Omit<WorkflowLockOptions, 'waitTimeout'> = {},
): Promise<TryWithLockResult<T>> {
  checkKnownOptions(options, knownTryOptions);
  const lock = lockOf(resourceId, options, Date.now());
  checkFunction(fn);
  const grant = await tryAcquire(lock);
  if (grant === undefined) return { acquired: false };
  return { acquired: true, value: await hold(lock, grant, fn) };
}

/**
 * Runs `fn` in workflow code while holding the locks on every one of `resourceIds`, as `withLock` holds one, and
 * returns what `fn` returns. The locks are taken one at a time in one order for every caller, client or workflow
 * (sorted, duplicates dropped), so calls whose sets overlap never deadlock; `waitTimeout` covers the whole set, and on
 * giving up every lock already taken is released. `fn` gets the leases by resource ID. If any lease is lost, `fn`'s
 * cancellation scope is cancelled and `withLocks` throws an `ApplicationFailure` of type `TemporalCoordination.LeaseLost`.
 */
export async function withLocks<T>(
  resourceIds: readonly string[],
  fn: (leases: ReadonlyMap<string, WorkflowLease>) => T | Promise<T>,
  options: WorkflowLockOptions = {},
): Promise<T> {
  const now = Date.now();
  const locks = lockOrder(resourceIds).map((resourceId) => lockOf(resourceId, options, now));
  checkFunction(fn);
  const leases = new Map<string, WorkflowLease>();
  // Each lock is held around the rest: released on every path, the last taken first.
  const holdFrom = async (index: number): Promise<T> => {
    const lock = locks[index];
    if (lock === undefined) return fn(leases);
    return hold(lock, await acquire(lock), (lease) => {
      leases.set(lock.resourceId, lease);
      return holdFrom(index + 1);
    });
  };
  return holdFrom(0);
}

export interface WorkflowLeadershipOptions extends WorkflowLockOptions {
  /**
   * What this candidate is known by while it leads: observers and `leader` see it.
   * @default the workflow's ID
   */
  readonly value?: string;
}

/** This workflow's leadership of an election, as `withLeadership` hands it to `fn`. */
export interface WorkflowLeadership {
  readonly electionId: string;
  /** Fencing token: strictly increases from one leader to the next, whoever campaigned. */
  readonly term: number;
  readonly value: string;
  /** Whether the leadership was lost (a renewal was rejected or did not land in time); `fn` is cancelled then. */
  readonly lost: boolean;
}

/**
 * Runs `fn` in workflow code while this workflow leads `electionId`, and resigns afterwards; returns what `fn` returns.
 * Workflow and client candidates lead in the order they campaigned, with one term sequence. Leadership renews while
 * `fn` runs; if it is lost, `fn`'s cancellation scope is cancelled and `withLeadership` throws an `ApplicationFailure`
 * of type `TemporalCoordination.LeaseLost`. Cancelling the workflow while it waits, or `waitTimeout`, withdraws it.
 */
export async function withLeadership<T>(
  electionId: string,
  fn: (leadership: WorkflowLeadership) => T | Promise<T>,
  options: WorkflowLeadershipOptions = {},
): Promise<T> {
  checkKnownOptions(options, knownLeadershipOptions);
  const { value: given, ...lockOptions } = options;
  const value = optionalString('value', given) ?? workflowInfo().workflowId;
  const lock = { ...lockOf(electionId, lockOptions, Date.now(), electionIdPrefix), election: true, value };
  checkFunction(fn);
  return hold(lock, await acquire(lock), (lease) =>
    fn({
      electionId,
      term: lease.token,
      value,
      get lost() {
        return lease.lost;
      },
    }),
  );
}

/** Checks one lock's arguments before anything is sent; its wait budget runs from `now`. */
function lockOf(resourceId: string, options: WorkflowLockOptions, now: number, idPrefix = lockIdPrefix): Lock {
  checkOptions(options);
  const prefix = idPrefix(options.idPrefix ?? DEFAULT_ID_PREFIX);
  checkResourceId('resourceId', resourceId, prefix);
  const waitTimeout =
    options.waitTimeout === undefined ? undefined : positiveDuration('waitTimeout', options.waitTimeout);
  return {
    resourceId,
    workflowId: prefix + resourceId,
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    ttl: optionalPositiveDuration('ttl', options.ttl, DEFAULT_TTL),
    waitTimeout,
    deadline: waitTimeout === undefined ? undefined : now + waitTimeout,
    limit: 1,
  };
}

function checkFunction(fn: unknown): void {
  if (typeof fn !== 'function') throw new TypeError(`Expected \`fn\` to be a function, got ${typeof fn}`);
}
