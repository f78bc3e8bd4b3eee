import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { failures } from '../errors.js';
import {
  acquireAnswerSignal,
  acquireSignal,
  awaitGrantUpdate,
  forceReleaseUpdate,
  leadershipQuery,
  lockStatusQuery,
  releaseSignal,
  renewUpdate,
  requestStatesQuery,
  tryAcquireUpdate,
  withdrawSignal,
} from './definitions.js';
import { LockCore, type AcquireRequest, type Decided, type LockSnapshot } from './lock-core.js';
import { BLOCKING_UP_TO_MEMO, headSlots, lockTimings } from './lock-protocol.js';
import { UpdateAdmission, nextRound } from './update-admission.js';

/** Finished request IDs remembered to ignore duplicates. */
const DEDUP_WINDOW = 2_000;
/** Continue-as-new well before the server's 10,000 signals and 2,000 updates per run. */
const MAX_SIGNALS_PER_RUN = 5_000;
const MAX_UPDATES_PER_RUN = 1_500;
/** Tokens are seeded from the run's start time so they keep increasing across idle exits: 1,000 grants per ms. */
const TOKENS_PER_MS = 1_000;

export interface LockWorkflowInput {
  /** State carried over by continue-as-new; absent for a fresh run. */
  readonly snapshot?: LockSnapshot;
  /** Set by a fresh run's first request if the resource is an election (a snapshot says so itself). */
  readonly election?: boolean;
}

/** One run per resource: serialises acquire, release, renew and withdraw requests, and exits when idle. */
export async function lockWorkflow(input: LockWorkflowInput = {}): Promise<void> {
  const run = new LockRun(input);
  run.handleSignals();
  run.handleUpdates();
  for (;;) {
    await run.settle();
    if (run.mustHandOver()) await run.handOver();
    if (run.core.isIdle()) {
      if (await run.lingeredIdle()) return;
    } else {
      await run.changeOrAlarm(run.changes, run.core.nextExpiry());
    }
  }
}

/**
 * The state of one run and its steps. Handlers only change state (and count the change); the main loop writes every
 * command that follows from it, in `settle` (see lib/workflows/update-admission.ts for why).
 */
class LockRun {
  readonly core: LockCore;
  /** Bumped by every change the main loop must look at: its `condition`s wait for it to move. */
  changes = 0;
  private signals = 0;
  private updates = 0;
  /** Set while this run hands over to the next: blocking waits return at once so their clients re-attach there. */
  private closing = false;
  /** Answers to workflow requesters still being signalled: the run neither exits nor hands over before they land. */
  private notifying = 0;
  private readonly admission = new UpdateAdmission();
  /** Requests blocked in `awaitGrant`, in the order they were accepted, and those the main loop has let return. */
  private readonly blockingWaits: string[] = [];
  private readonly released = new Set<string>();
  /** The last `BLOCKING_UP_TO_MEMO` value written, and the newest ticket that has been past the head slots. */
  private published: number | undefined;
  private farBackUpTo: number;
  /** Wake-ups for lease expiry and the idle linger, by due time; `alarmsRung` counts those that fired. */
  private readonly pendingAlarms = new Set<number>();
  private alarmsRung = 0;

  constructor({ snapshot, election }: LockWorkflowInput) {
    const tokenFloor = workflowInfo().runStartTime.getTime() * TOKENS_PER_MS;
    const options = { claimWindow: lockTimings.claimWindow, dedupWindow: DEDUP_WINDOW, election: election === true };
    this.core = new LockCore(snapshot, tokenFloor, options);
    this.farBackUpTo = this.core.ticketAt(this.core.waiting() - 1) ?? -Infinity;
  }

  handleSignals(): void {
    const changed = () => {
      this.admission.eventHandled();
      this.signals++;
      this.changes++;
    };
    setHandler(acquireSignal, (request) => {
      changed();
      this.core.acquire(request, Date.now());
    });
    setHandler(releaseSignal, ({ requestId, token }) => {
      changed();
      this.core.release(requestId, token, Date.now());
    });
    setHandler(withdrawSignal, ({ requestId }) => {
      changed();
      this.core.withdraw(requestId, Date.now());
    });
    setHandler(requestStatesQuery, (requestIds) =>
      requestIds.map((requestId) => this.core.requestState(requestId, Date.now())),
    );
    setHandler(lockStatusQuery, () => this.core.status());
    setHandler(leadershipQuery, (afterSeq) => this.core.leadershipView(afterSeq));
  }

  /** Every accepted update bumps `changes`: the main loop then looks at the resource at this task's time. */
  handleUpdates(): void {
    setHandler(awaitGrantUpdate, (requestId) => this.awaitGrant(requestId), {
      // Rejected updates write no history: far-back and unknown waiters are turned away for free.
      validator: (requestId) => {
        const state = this.core.requestState(requestId, Date.now());
        if (state.state === 'unknown') throw new Error(`Unknown request ${requestId}`);
        if (state.state === 'waiting' && state.position >= headSlots(this.core.slotLimit())) {
          throw new Error(`Request ${requestId} is at position ${state.position}; read the memo instead`);
        }
        // A refused blocking wait that is granted by now tells its client so, with no further call.
        this.admission.admit(this.isBusy(), [state]);
      },
    });
    setHandler(renewUpdate, ({ requestId, token }) => this.renew(requestId, token), {
      validator: ({ requestId, token }) => {
        const state = this.core.requestState(requestId, Date.now());
        if (state.state !== 'granted' || state.token !== token) throw failures.leaseLost(token);
        this.admission.admit(this.isBusy());
      },
    });
    setHandler(tryAcquireUpdate, (request) => this.tryAcquire(request), {
      validator: (request) => {
        // Refused by the validator, a try costs no history; a request already decided gets its answer again.
        const known = this.core.requestState(request.requestId, Date.now()).state !== 'unknown';
        if (!known && this.core.isFull(request)) throw failures.notFree();
        this.admission.admit(this.isBusy());
      },
    });
    setHandler(
      forceReleaseUpdate,
      ({ token, reason }) => {
        this.updates++;
        this.changes++;
        return { released: this.core.forceRelease(token, reason, Date.now()) };
      },
      { validator: (_request) => this.admission.admit(this.isBusy()) },
    );
  }

  /** Busy for updates beyond the admission rule: handing over, or a blocking wait is due to complete. */
  private isBusy(): boolean {
    return this.closing || this.blockingWaits.some((requestId) => this.grantDue(requestId));
  }

  private grantDue(requestId: string): boolean {
    return this.closing || this.core.requestState(requestId, Date.now()).state !== 'waiting';
  }

  /**
   * Blocks until the main loop lets the request's wait return. No timeout, so no timer (rule 3); the wait always ends:
   * a waiter at the head is granted, withdrawn or (if its process died) granted and expired.
   */
  private async awaitGrant(requestId: string) {
    this.updates++;
    this.blockingWaits.push(requestId);
    this.changes++;
    await condition(() => this.released.has(requestId));
    this.released.delete(requestId);
    this.blockingWaits.splice(this.blockingWaits.indexOf(requestId), 1);
    this.admission.eventHandled();
    return this.core.requestState(requestId, Date.now());
  }

  private tryAcquire(request: AcquireRequest): Decided {
    this.updates++;
    this.changes++;
    return this.core.tryAcquire(request, Date.now());
  }

  private renew(requestId: string, token: number): number {
    this.updates++;
    this.changes++;
    const now = Date.now();
    const expiresAt = this.core.renew(requestId, token, now);
    if (expiresAt === undefined) throw failures.leaseLost(token);
    return expiresAt - now;
  }

  /**
   * Writes the commands that follow from the changes so far, always in one order (rule 2): the due blocking waits
   * complete one at a time, in the order they were accepted, then workflow requesters get their answers, then far-back
   * waiters learn who may block; timers, continue-as-new and completion follow from the main loop.
   */
  async settle(): Promise<void> {
    await nextRound();
    this.core.expire(Date.now());
    for (;;) {
      const due = this.blockingWaits.find((requestId) => this.grantDue(requestId));
      if (due === undefined) break;
      this.released.add(due);
      await condition(() => !this.blockingWaits.includes(due));
    }
    this.notify();
    this.publishBlockingUpTo();
  }

  /** Signals their answers to workflow requesters. */
  private notify(): void {
    for (const { requestId, notify: requester, answer } of this.core.takeNotifications()) {
      this.notifying++;
      getExternalWorkflowHandle(requester.workflowId)
        .signal(acquireAnswerSignal, { requestId, answer })
        .catch(() => {
          // The requester is gone (completed, failed, terminated): take its request back at once rather than wait
          // for its grant's claim window.
          this.core.withdraw(requestId, Date.now());
        })
        .finally(() => {
          this.admission.eventHandled();
          this.notifying--;
          this.changes++;
        });
    }
  }

  /**
   * Publishes the ticket of the last waiter that may block (see `BLOCKING_UP_TO_MEMO`), only once a waiter that has
   * been far back can block: with a short queue nobody reads the memo, and each change costs a history event.
   */
  private publishBlockingUpTo(): void {
    const { core } = this;
    const slots = headSlots(core.slotLimit());
    if (core.ticketAt(slots) !== undefined)
      this.farBackUpTo = Math.max(this.farBackUpTo, core.ticketAt(core.waiting() - 1)!);
    const blockingUpTo = core.ticketAt(Math.min(slots, core.waiting()) - 1);
    if (blockingUpTo === undefined || blockingUpTo === this.published || blockingUpTo > this.farBackUpTo) return;
    this.published = blockingUpTo;
    upsertMemo({ [BLOCKING_UP_TO_MEMO]: blockingUpTo });
  }

  mustHandOver(): boolean {
    return (
      workflowInfo().continueAsNewSuggested ||
      this.signals >= MAX_SIGNALS_PER_RUN ||
      this.updates >= MAX_UPDATES_PER_RUN
    );
  }

  /** Continues as new once every handler has finished and every answer has landed. Never returns. */
  async handOver(): Promise<never> {
    this.closing = true;
    do {
      await this.settle();
      await condition(() => allHandlersFinished() && this.notifying === 0);
    } while (this.core.hasNotifications());
    // Signals that arrived while handlers finished are already in `core`: nothing is lost.
    return continueAsNew<typeof lockWorkflow>({ snapshot: this.core.snapshot() });
  }

  /** Waits out the linger of an idle resource; true if nothing came, so the run may complete. */
  async lingeredIdle(): Promise<boolean> {
    const seen = this.changes;
    const deadline = Date.now() + lockTimings.linger;
    let woken = false;
    while (!woken && Date.now() < deadline) woken = await this.changeOrAlarm(seen, deadline);
    // Re-checked in the same activation as the return: a request that raced the exit keeps the run alive.
    return !woken && this.core.isIdle() && allHandlersFinished() && this.notifying === 0;
  }

  /** Waits for a change since `seen` or an alarm (an earlier one than `deadline` too); returns whether a change came. */
  async changeOrAlarm(seen: number, deadline: number | undefined): Promise<boolean> {
    const rung = this.alarmsRung;
    if (deadline !== undefined) this.wakeAt(deadline);
    await condition(
      () => this.changes !== seen || this.alarmsRung !== rung || (deadline !== undefined && Date.now() >= deadline),
    );
    return this.changes !== seen;
  }

  /** A timer, once started, is never cancelled, and one starts only when no earlier one is pending (rule 3). */
  private wakeAt(at: number): void {
    const now = Date.now();
    for (const pending of this.pendingAlarms) if (pending > now && pending <= at) return;
    this.pendingAlarms.add(at);
    void sleep(Math.max(1, at - now)).then(() => {
      this.admission.eventHandled();
      this.pendingAlarms.delete(at);
      this.alarmsRung++;
    });
  }
}
