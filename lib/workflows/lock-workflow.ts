import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  sleep,
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
 * How many waiters at the head of the queue of a resource with `limit` slots may block in an update; the rest poll a
 * query. With the holders' renewals they stay under the server's 10 updates in flight per workflow, with room to
 * spare: an update turned away at that limit makes the server drop the workflow's cached state (see the client).
 */
export function headSlots(limit: number): number {
  return Math.max(1, MAX_UPDATES_IN_FLIGHT - limit);
}

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
  // were handled. When such a task also carries new updates, the SDK (1.24) runs the events in one activation and the
  // updates in a second one the first time, so the commands the events cause (a timer, a blocking wait's completion)
  // come before the acceptances in history; on replay it runs them in one activation, where the acceptances come
  // first, and fails that task with a nondeterminism error forever after: the resource wedges at the next worker
  // restart or cache eviction. So such updates, and those that arrive while a blocking wait is due to complete, are
  // turned away as busy (no history cost), and their clients send them again.
  const stillWaiting = (state: RequestState) => state.state === 'waiting';
  const grantDue = (requestId: string) => closing || !stillWaiting(core.requestState(requestId, Date.now()));
  const blockingWaits: string[] = [];
  // The task is recognised by its history length and by its start time (workflow time): either matching is enough.
  let eventTask = { historyLength: -1, time: -1 };
  const eventHandled = () => {
    eventTask = { historyLength: workflowInfo().historyLength, time: Date.now() };
  };
  const sameTask = () => eventTask.historyLength === workflowInfo().historyLength || eventTask.time === Date.now();
  /** `state`, when given, is the requester's state, so a refused blocking wait that is granted by now needs no query. */
  const refuseIfBusy = (state?: RequestState) => {
    if (sameTask() || blockingWaits.some(grantDue)) {
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

  /** Signals their answers to workflow requesters; called right after every event that can grant or reject. */
  const notify = () => {
    for (const { requestId, notify: requester, answer } of core.takeNotifications()) {
      notifying++;
      getExternalWorkflowHandle(requester.workflowId)
        .signal(acquireAnswerSignal, { requestId, answer })
        .catch(() => {
          // The requester is gone (completed, failed, terminated): take its request back at once rather than wait
          // for its grant's claim window.
          core.withdraw(requestId, Date.now());
          notify();
        })
        .finally(() => {
          eventHandled();
          notifying--;
          changes++;
        });
    }
  };

  setHandler(acquireSignal, (request) => {
    changed();
    core.acquire(request, Date.now());
    notify();
  });
  setHandler(releaseSignal, ({ requestId, token }) => {
    changed();
    core.release(requestId, token, Date.now());
    notify();
  });
  setHandler(withdrawSignal, ({ requestId }) => {
    changed();
    core.withdraw(requestId, Date.now());
    notify();
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
      // No timeout, so no timer: the SDK's replay of a task that accepts an update and starts a timer can fail with a
      // nondeterminism error after a worker restart, wedging the resource. The wait always ends anyway: a waiter at
      // the head is granted, withdrawn or (if its process died) granted and expired.
      await condition(() => grantDue(requestId));
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
      const released = core.forceRelease(token, reason, Date.now());
      notify();
      return { released };
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

  for (;;) {
    core.expire(Date.now());
    notify();
    const mustHandOver =
      workflowInfo().continueAsNewSuggested || signals >= MAX_SIGNALS_PER_RUN || updates >= MAX_UPDATES_PER_RUN;
    if (mustHandOver) {
      closing = true;
      await condition(() => allHandlersFinished() && notifying === 0);
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
