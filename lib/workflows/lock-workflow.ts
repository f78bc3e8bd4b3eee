import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { failureTypes } from '../errors.js';
import {
  acquireAnswerSignal,
  acquireSignal,
  awaitGrantUpdate,
  forceReleaseUpdate,
  lockStatusQuery,
  releaseSignal,
  renewUpdate,
  requestStatesQuery,
  withdrawSignal,
} from './definitions.js';
import { LockCore, type LockSnapshot, type RequestState } from './lock-core.js';
import { BLOCKING_UP_TO_MEMO, headSlots, lockTimings } from './lock-protocol.js';

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
}

/** One run per resource: serialises acquire, release, renew and withdraw requests, and exits when idle. */
export async function lockWorkflow(input: LockWorkflowInput = {}): Promise<void> {
  const tokenFloor = workflowInfo().runStartTime.getTime() * TOKENS_PER_MS;
  const core = new LockCore(input.snapshot ?? LockCore.empty(tokenFloor), {
    claimWindow: lockTimings.claimWindow,
    dedupWindow: DEDUP_WINDOW,
  });
  core.raiseTokenFloor(tokenFloor);

  let signals = 0;
  let updates = 0;
  let changes = 0;
  // Set while this run hands over to the next: blocking waits return at once so their clients re-attach there.
  let closing = false;
  // Answers to workflow requesters still being signalled: the run neither exits nor hands over before they land.
  let notifying = 0;

  // Updates are never accepted in a workflow task in which events (signals, timers, answers to workflow requesters)
  // were handled. When such a task also carries new updates, the SDK (1.24) can run the events in one activation and
  // the updates in a second one the first time (seen on a worker that loads the workflow from its history), so the
  // commands the events cause (a timer, a blocking wait's completion) come before the acceptances in history; on replay
  // it runs them in one activation, where the acceptances come first, and fails that task with a nondeterminism error
  // forever after: the resource wedges at the next worker restart or cache eviction. So such updates, and those that
  // arrive while a blocking wait is due to complete, are turned away as busy (no history cost), and their clients send
  // them again.
  const stillWaiting = (state: RequestState) => state.state === 'waiting';
  const grantDue = (requestId: string) => closing || !stillWaiting(core.requestState(requestId, Date.now()));
  const blockingWaits: string[] = [];
  // Blocking waits the main loop has let return.
  const released = new Set<string>();
  // The task is recognised by its history length or by its start time (workflow time). The first of two activations
  // of one task can see a history a little shorter (up to the task's scheduled event) and the previous task's time,
  // while the next task starts at least 3 events later (completed, scheduled, started). A replayed task can see other
  // history lengths than it did the first time, so a task that is that close but starts later than the first one seen
  // at its history length (a new attempt of an update's task, which adds no events when refused) is a new task.
  let eventTask = { historyLength: -Infinity, time: -1 };
  const eventHandled = () => {
    eventTask = { historyLength: workflowInfo().historyLength, time: Date.now() };
  };
  let firstSeen = { historyLength: -1, time: -1 };
  const sameTask = () => {
    const { historyLength } = workflowInfo();
    const time = Date.now();
    if (historyLength !== firstSeen.historyLength) firstSeen = { historyLength, time };
    if (historyLength === eventTask.historyLength || time === eventTask.time) return true;
    return historyLength - eventTask.historyLength < 3 && time === firstSeen.time;
  };
  /** `state`, when given, is the requester's state, so a refused blocking wait that is granted by now needs no query. */
  const refuseIfBusy = (state?: RequestState) => {
    if (closing || sameTask() || blockingWaits.some(grantDue)) {
      throw ApplicationFailure.create({
        type: failureTypes.busy,
        message: 'Events were handled in this workflow task; send the update again',
        nonRetryable: true,
        details: state ? [state] : [],
      });
    }
  };

  const changed = () => {
    eventHandled();
    signals++;
    changes++;
  };

  // Published only once a waiter that has been far back (past the head slots) can block: with a short queue nobody
  // reads the memo, and each change costs a history event.
  let published: number | undefined;
  let farBackUpTo = core.ticketAt(core.waiting() - 1) ?? -Infinity;
  /** Publishes the ticket of the last waiter that may block (see `BLOCKING_UP_TO_MEMO`). */
  const publishBlockingUpTo = () => {
    const slots = headSlots(core.slotLimit());
    if (core.ticketAt(slots) !== undefined) farBackUpTo = Math.max(farBackUpTo, core.ticketAt(core.waiting() - 1)!);
    const blockingUpTo = core.ticketAt(Math.min(slots, core.waiting()) - 1);
    if (blockingUpTo === undefined || blockingUpTo === published || blockingUpTo > farBackUpTo) return;
    published = blockingUpTo;
    upsertMemo({ [BLOCKING_UP_TO_MEMO]: blockingUpTo });
  };

  /** Signals their answers to workflow requesters. */
  const notify = () => {
    for (const { requestId, notify: requester, answer } of core.takeNotifications()) {
      notifying++;
      getExternalWorkflowHandle(requester.workflowId)
        .signal(acquireAnswerSignal, { requestId, answer })
        .catch(() => {
          // The requester is gone (completed, failed, terminated): take its request back at once rather than wait
          // for its grant's claim window.
          core.withdraw(requestId, Date.now());
        })
        .finally(() => {
          eventHandled();
          notifying--;
          changes++;
        });
    }
  };

  // Handlers only change state; the main loop writes every command that follows from it (see `settle`).
  setHandler(acquireSignal, (request) => {
    changed();
    core.acquire(request, Date.now());
  });
  setHandler(releaseSignal, ({ requestId, token }) => {
    changed();
    core.release(requestId, token, Date.now());
  });
  setHandler(withdrawSignal, ({ requestId }) => {
    changed();
    core.withdraw(requestId, Date.now());
  });
  setHandler(requestStatesQuery, (requestIds) =>
    requestIds.map((requestId) => core.requestState(requestId, Date.now())),
  );
  setHandler(lockStatusQuery, () => core.status());

  setHandler(
    awaitGrantUpdate,
    async (requestId) => {
      updates++;
      blockingWaits.push(requestId);
      changes++; // see the renewal
      // No timeout, so no timer: the SDK's replay of a task that accepts an update and starts a timer can fail with a
      // nondeterminism error after a worker restart, wedging the resource. The wait always ends anyway: a waiter at
      // the head is granted, withdrawn or (if its process died) granted and expired. The main loop lets it return.
      await condition(() => released.has(requestId));
      released.delete(requestId);
      blockingWaits.splice(blockingWaits.indexOf(requestId), 1);
      eventHandled();
      return core.requestState(requestId, Date.now());
    },
    {
      // Rejected updates write no history: far-back and unknown waiters are turned away for free.
      validator: (requestId) => {
        const state = core.requestState(requestId, Date.now());
        if (state.state === 'unknown') throw new Error(`Unknown request ${requestId}`);
        if (state.state === 'waiting' && state.position >= headSlots(core.slotLimit())) {
          throw new Error(`Request ${requestId} is at position ${state.position}; poll its state instead`);
        }
        refuseIfBusy(state);
      },
    },
  );
  setHandler(
    renewUpdate,
    ({ requestId, token }) => {
      updates++;
      // Every accepted update wakes the main loop, which looks at the resource at this task's time: on replay the SDK
      // runs the events of an earlier task that wrote no commands in this one, and the loop must decide the same.
      changes++;
      const now = Date.now();
      const expiresAt = core.renew(requestId, token, now);
      if (expiresAt === undefined) {
        throw ApplicationFailure.create({
          type: failureTypes.leaseLost,
          message: `Lease ${token} is no longer held`,
          nonRetryable: true,
        });
      }
      return expiresAt - now;
    },
    {
      validator: ({ requestId, token }) => {
        const state = core.requestState(requestId, Date.now());
        if (state.state !== 'granted' || state.token !== token) throw new Error(`Lease ${token} is no longer held`);
        refuseIfBusy();
      },
    },
  );

  setHandler(
    forceReleaseUpdate,
    ({ token, reason }) => {
      updates++;
      changes++;
      return { released: core.forceRelease(token, reason, Date.now()) };
    },
    { validator: (_request) => refuseIfBusy() },
  );

  // Wake-ups for lease expiry and the idle linger. A timer, once started, is never cancelled, and one is started only
  // when no earlier one is pending: cancelling and restarting timers on every change is what the SDK has been seen
  // to replay wrongly next to update acceptances, and it would cost history events on every request.
  const pendingAlarms = new Set<number>();
  let alarmsRung = 0;
  const wakeAt = (at: number) => {
    const now = Date.now();
    for (const pending of pendingAlarms) if (pending > now && pending <= at) return;
    pendingAlarms.add(at);
    void sleep(Math.max(1, at - now)).then(() => {
      eventHandled();
      pendingAlarms.delete(at);
      alarmsRung++;
    });
  };
  /** Waits for a change or an alarm (an earlier one than `deadline` too); returns whether a change woke it. */
  const changeOrAlarm = async (seen: number, deadline: number | undefined): Promise<boolean> => {
    const rung = alarmsRung;
    if (deadline !== undefined) wakeAt(deadline);
    await condition(
      () => changes !== seen || alarmsRung !== rung || (deadline !== undefined && Date.now() >= deadline),
    );
    return changes !== seen;
  };

  /** Resolves in the SDK's next round of condition checks: after every update completion started before it is written. */
  const nextRound = () => {
    let firstLook = true;
    return condition(() => {
      if (!firstLook) return true;
      firstLook = false;
      return false;
    });
  };
  /**
   * Writes the commands that follow from the changes so far, always in one order: the due blocking waits complete one
   * at a time, in the order they were accepted, then workflow requesters get their answers, then far-back waiters learn
   * who may block; timers, continue-as-new and completion follow from the loop. The SDK groups a task's jobs differently
   * on replay than the first time (accepted updates last, refused ones not at all), so an order left to promise
   * scheduling, such as a blocking wait's completion racing the timer its grant starts, can come out differently on
   * replay: a nondeterminism error that fails the workflow's tasks for good and wedges the resource.
   */
  const settle = async () => {
    // Completions of updates handled in this round (renewals) are written first.
    await nextRound();
    core.expire(Date.now());
    for (;;) {
      const due = blockingWaits.find(grantDue);
      if (due === undefined) break;
      released.add(due);
      await condition(() => !blockingWaits.includes(due));
    }
    notify();
    publishBlockingUpTo();
  };

  for (;;) {
    await settle();
    const mustHandOver =
      workflowInfo().continueAsNewSuggested || signals >= MAX_SIGNALS_PER_RUN || updates >= MAX_UPDATES_PER_RUN;
    if (mustHandOver) {
      closing = true;
      // Blocking waits return at once, so their clients re-attach to the next run; every answer lands first.
      do {
        await settle();
        await condition(() => allHandlersFinished() && notifying === 0);
      } while (core.hasNotifications());
      // Signals that arrived while handlers finished are already in `core`: nothing is lost.
      await continueAsNew<typeof lockWorkflow>({ snapshot: core.snapshot() });
    }
    const seen = changes;
    if (core.isIdle()) {
      const deadline = Date.now() + lockTimings.linger;
      let woken = false;
      while (!woken && Date.now() < deadline) woken = await changeOrAlarm(seen, deadline);
      // Re-checked in the same activation as the return: a request that raced the exit keeps the run alive.
      if (!woken && core.isIdle() && allHandlersFinished() && notifying === 0) return;
      continue;
    }
    await changeOrAlarm(seen, core.nextExpiry());
  }
}
