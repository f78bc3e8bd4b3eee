import { EventEmitter, once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueryRejectedError, WorkflowNotFoundError, type WorkflowClient } from '@temporalio/client';
import { ServerUnavailableError } from '../errors.js';
import { isBusy, isTaskFailing, isTransient, isUnreachable, retryTransient } from '../rpc.js';
import { awaitGrantUpdate, requestStatesQuery } from '../workflows/definitions.js';
import type { Decided, RequestState } from '../workflows/lock-core.js';
import { BLOCKING_UP_TO_MEMO } from '../workflows/lock-protocol.js';
import { terminateIfStuck } from './stuck-run.js';

/** What a wait ends with: the request was granted, rejected, or is not known to the running workflow (any more). */
export type WaitOutcome = Decided;
type Waiting = Extract<RequestState, { state: 'waiting' }>;

export interface WaitOptions {
  /** How many waiters at the head may block in an update (`headSlots` of the resource's limit). */
  readonly slots: number;
  readonly signal: AbortSignal;
  /** How long reads of the request's state retry an unreachable server, in ms. */
  readonly budget: number;
  /** Whether a wait with no time limit of its own outlasts a run that answers no query (it is terminated if stuck). */
  readonly outlastSlowRuns: boolean;
}

/** After an update turned away as busy, a waiter near the head blocks again after about this long. */
const BUSY_RETRY = 10;
/** Bounds of the delay between two looks at the memo. */
const MIN_LOOK_DELAY = 20;
const MAX_LOOK_DELAY = 2_000;
/** A describe of a lock workflow is short: a slower one gives way to a query, which knows how to wait for a server. */
const DESCRIBE_TIMEOUT = 2_000;
/** While a process has waiters on a resource, it checks this often that the resource's workflow still makes progress. */
const STUCK_CHECK = 10_000;
/**
 * A room stays open this long after its last waiter left, so a process that takes the lock again and again keeps the
 * pace it has seen the memo move at.
 */
const ROOM_LINGER = 2_000;

/**
 * Where this process's waiters for one resource wait. Each waiter reads its state with a query (batched: one in flight
 * per resource), blocks in the workflow's `awaitGrant` update once it is within the head slots (never more blocking
 * updates than the slots at once), and until then learns from one describe loop, reading the ticket the workflow
 * publishes in its memo, when to move up. A describe is served by the server alone (no workflow task, no query buffer),
 * so far-back waiters cost the workflow nothing. The room closes a little after its last waiter leaves.
 */
export class WaitingRoom {
  private waiters = 0;
  private blocking = 0;
  /**
   * `slot` when a blocking slot frees, `state <requestId>` with a batched query's answer, and `ticket <ticket>` when a
   * far-back waiter may block (or should ask with a query instead).
   */
  private readonly events = new EventEmitter().setMaxListeners(0);
  /** The tickets of the waiters that learn from the memo when to block. */
  private readonly farBack = new Set<number>();
  private looking = false;
  /** The head slots of the resource (every waiter of a busy resource asks with its limit). */
  private slots = 1;
  /** The run that published the last memo value seen, and the pace (ms per ticket) at which that value moved. */
  private memo: { readonly runId: string; readonly blockingUpTo: number; readonly at: number } | undefined;
  private pace: number | undefined;
  private lookBackoff = MIN_LOOK_DELAY;
  /** The requests to ask about in the next query, with the signals of their callers. */
  private queued = new Map<string, AbortSignal[]>();
  private querying = false;
  private readonly stuckCheck: NodeJS.Timeout;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(
    /** Must reject queries to closed runs (`queryRejectCondition: 'NOT_OPEN'`). */
    private readonly client: WorkflowClient,
    private readonly workflowId: string,
    private readonly onClose: () => void,
  ) {
    const check = () => this.waiters > 0 && void terminateIfStuck(client, workflowId).catch(() => {});
    this.stuckCheck = setInterval(check, STUCK_CHECK);
    this.stuckCheck.unref();
  }

  /** Waits until the request is granted, rejected or unknown; rejects when the signal aborts. */
  async wait(requestId: string, options: WaitOptions): Promise<WaitOutcome> {
    this.waiters++;
    this.slots = options.slots;
    clearTimeout(this.closeTimer);
    try {
      // The first look is a query, never a blocking update: a guess that this waiter is near the head must never be
      // what takes the workflow past the server's 10 updates in flight (an update turned away there makes the server
      // drop the workflow's cached state, aborting every other update and the task in flight).
      let state = await this.readState(requestId, options);
      while (state.state === 'waiting') {
        const mayBlock = state.position < options.slots || (await this.moveUp(state, options.signal));
        state =
          (mayBlock ? await this.block(requestId, options) : undefined) ?? (await this.readState(requestId, options));
      }
      return state;
    } finally {
      if (--this.waiters === 0) {
        this.closeTimer = setTimeout(() => {
          clearInterval(this.stuckCheck);
          this.onClose();
        }, ROOM_LINGER);
        this.closeTimer.unref();
      }
    }
  }

  /**
   * Blocks in `awaitGrant` once a blocking slot of this process is free. Returns the state it learns, or `undefined`
   * when the update was turned away (not near the head after all, a run handing over, an unreachable server): the
   * caller reads the state with a query then.
   */
  private async block(requestId: string, { slots, signal }: WaitOptions): Promise<RequestState | undefined> {
    while (this.blocking >= slots) await once(this.events, 'slot', { signal });
    this.blocking++;
    try {
      // A signal of its own per call: the SDK adds an abort listener to the signal it is given and never removes it.
      return await this.client.withAbortSignal(AbortSignal.any([signal]), () =>
        this.client.getHandle(this.workflowId).executeUpdate(awaitGrantUpdate, { args: [requestId] }),
      );
    } catch (error) {
      signal.throwIfAborted();
      if (!isBusy(error)) return undefined;
      // Turned away as busy: the refusal carries the request's state, so a grant needs no query.
      const state = error.cause.details?.[0] as RequestState | undefined;
      // Jittered, so waiters turned away together do not all come back in one workflow task again.
      if (state?.state === 'waiting') await sleep(BUSY_RETRY * (0.5 + Math.random()), undefined, { signal });
      return state;
    } finally {
      this.blocking--;
      this.events.emit('slot');
    }
  }

  /** Reads the request's state with a query, retried while the server is unreachable and, if asked, while stuck. */
  private async readState(requestId: string, options: WaitOptions): Promise<RequestState> {
    for (;;) {
      try {
        return await retryTransient('requestState', () => this.query(requestId, options.signal), {
          signal: options.signal,
          budget: options.budget,
          retryIf: (error) => isTransient(error) || isTaskFailing(error),
        });
      } catch (error) {
        // A run whose tasks fail answers no query until it fails or is terminated (see stuck-run.ts), and one whose
        // task is stuck on a dead worker answers after up to 30 s: only an unreachable server ends such a wait.
        const slowRun = error instanceof ServerUnavailableError && !isUnreachable(error.cause);
        if (!options.outlastSlowRuns || !slowRun) throw error;
      }
    }
  }

  /** One query in flight per room: callers that ask while it runs are answered together by the next one. */
  private async query(requestId: string, signal: AbortSignal): Promise<RequestState> {
    const answer = once(this.events, `state ${requestId}`, { signal });
    this.queued.set(requestId, [...(this.queued.get(requestId) ?? []), signal]);
    if (!this.querying) void this.flushQueries();
    const [state] = (await answer) as [RequestState | Error];
    if (state instanceof Error) throw state;
    return state;
  }

  private async flushQueries(): Promise<void> {
    this.querying = true;
    while (this.queued.size > 0) {
      const batch = this.queued;
      this.queued = new Map();
      const requestIds = [...batch.keys()];
      // Called off once none of its callers waits any more: with no worker to answer, it would hang.
      const signals = [...batch.values()].flat();
      const callOff = new AbortController();
      const onAbort = () => signals.every((signal) => signal.aborted) && callOff.abort();
      for (const signal of signals) signal.addEventListener('abort', onAbort);
      const states = await this.client
        .withAbortSignal(callOff.signal, () =>
          this.client.getHandle(this.workflowId).query(requestStatesQuery, requestIds),
        )
        .catch((error: unknown) =>
          // No running workflow: none of these requests is known any more. A closed run (terminated, or failed by a
          // nondeterminism error) would answer from its last state, where its waiters wait forever.
          error instanceof WorkflowNotFoundError || error instanceof QueryRejectedError
            ? requestIds.map((): RequestState => ({ state: 'unknown' }))
            : requestIds.map(() => (error instanceof Error ? error : new Error(String(error)))),
        )
        .finally(() => {
          for (const signal of signals) signal.removeEventListener('abort', onAbort);
        });
      requestIds.forEach((requestId, i) => this.events.emit(`state ${requestId}`, states[i] ?? { state: 'unknown' }));
    }
    this.querying = false;
  }

  /**
   * Resolves `true` once the memo says the waiter may block; `false` when it should read its state with a query
   * instead (nothing published, a new run, or the workflow could not be described).
   */
  private async moveUp({ ticket }: Waiting, signal: AbortSignal): Promise<boolean> {
    this.farBack.add(ticket);
    if (!this.looking) void this.lookLoop();
    try {
      const [mayBlock] = (await once(this.events, `ticket ${ticket}`, { signal })) as [boolean];
      return mayBlock;
    } finally {
      this.farBack.delete(ticket);
    }
  }

  /** Describes the workflow while far-back waiters wait, each time about when the nearest of them may block. */
  private async lookLoop(): Promise<void> {
    this.looking = true;
    while (this.farBack.size > 0) {
      await sleep(this.lookDelay());
      const seen = await this.readMemo();
      for (const ticket of this.farBack) {
        if (seen !== undefined && ticket > seen.blockingUpTo) continue;
        this.farBack.delete(ticket);
        this.events.emit(`ticket ${ticket}`, seen !== undefined);
      }
    }
    this.looking = false;
  }

  /**
   * Half the time the nearest far-back waiter has left to start blocking: until it comes within the head slots, and on
   * through them to the second place, at the pace the memo moved lately. The half makes up for a pace misjudged by up
   * to 2x. Until that pace is known, a backoff that doubles while the memo stands still.
   */
  private lookDelay(): number {
    if (this.memo === undefined || this.pace === undefined) return this.lookBackoff;
    const handOffs = Math.min(...this.farBack) - this.memo.blockingUpTo + Math.max(0, this.slots - 2);
    return Math.min(MAX_LOOK_DELAY, Math.max(MIN_LOOK_DELAY, (handOffs * this.pace) / 2));
  }

  /** The memo's value, if the run that published it is the one seen last; keeps the pace at which it moves. */
  private async readMemo(): Promise<{ blockingUpTo: number } | undefined> {
    const seen = await this.describe();
    const now = Date.now();
    const last = this.memo;
    this.memo = seen && { ...seen, at: now };
    if (seen === undefined || (last !== undefined && seen.runId !== last.runId)) {
      // Another run's tickets, and its pace, are not comparable with this one's.
      this.pace = undefined;
      this.lookBackoff = MIN_LOOK_DELAY;
      return last === undefined ? seen : undefined;
    }
    if (last !== undefined && seen.blockingUpTo > last.blockingUpTo) {
      // A moving average, unless the latest look saw the memo move faster: one slow stretch (a stalled task, a
      // continue-as-new) must not put off the next looks until the waiters have missed their turn.
      const observed = (now - last.at) / (seen.blockingUpTo - last.blockingUpTo);
      this.pace = this.pace === undefined ? observed : Math.min(observed, 0.8 * this.pace + 0.2 * observed);
      this.lookBackoff = MIN_LOOK_DELAY;
    } else {
      this.lookBackoff = Math.min(MAX_LOOK_DELAY, this.lookBackoff * 2);
    }
    return seen;
  }

  private async describe(): Promise<{ runId: string; blockingUpTo: number } | undefined> {
    try {
      const { status, runId, memo } = await this.client.connection.withDeadline(Date.now() + DESCRIBE_TIMEOUT, () =>
        this.client.getHandle(this.workflowId).describe(),
      );
      const blockingUpTo = memo?.[BLOCKING_UP_TO_MEMO];
      return status.name === 'RUNNING' && typeof blockingUpTo === 'number' ? { runId, blockingUpTo } : undefined;
    } catch {
      return undefined;
    }
  }
}
