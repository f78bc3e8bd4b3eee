/**
 * Trivial workflows for the `floor` scenario: the cheapest Temporal hand-offs, with no library code in the way.
 * Workflow-safe: imports only `@temporalio/workflow` and `@temporalio/common`.
 * @module
 */
import { HandlerUnfinishedPolicy } from '@temporalio/common';
import { condition, defineQuery, defineSignal, defineUpdate, setHandler } from '@temporalio/workflow';

/** Raises the flag once more: the `n`-th flag releases the waiter for `n`. */
export const flagSignal = defineSignal('tc.bench.floor.flag');
/** Blocks until `n` flags have been raised, then returns the number of flags. */
export const waitForFlagUpdate = defineUpdate<number, [n: number]>('tc.bench.floor.wait-for-flag');
/** Returns at once (the number of pings so far). */
export const pingUpdate = defineUpdate<number>('tc.bench.floor.ping');
/** The number of pings so far. */
export const pingsQuery = defineQuery<number>('tc.bench.floor.pings');
/** Ends {@link floorHandOff}. */
export const stopSignal = defineSignal('tc.bench.floor.stop');
/** The signal sent with signal-with-start to {@link floorSignalWithStart}. */
export const wakeSignal = defineSignal('tc.bench.floor.wake');

/** A long-lived workflow serving many samples: counts flags and pings, ends at once on {@link stopSignal}. */
export async function floorHandOff(): Promise<void> {
  let flags = 0;
  let pings = 0;
  let stopped = false;
  setHandler(flagSignal, () => {
    flags += 1;
  });
  // A waiter left by an interrupted bench run must not keep the workflow open.
  setHandler(
    waitForFlagUpdate,
    async (n) => {
      await condition(() => flags >= n);
      return flags;
    },
    { unfinishedPolicy: HandlerUnfinishedPolicy.ABANDON },
  );
  setHandler(pingUpdate, () => {
    pings += 1;
    return pings;
  });
  setHandler(pingsQuery, () => pings);
  setHandler(stopSignal, () => {
    stopped = true;
  });
  await condition(() => stopped);
}

/** Started by signal-with-start; completes as soon as its signal has been delivered. */
export async function floorSignalWithStart(): Promise<void> {
  let woken = false;
  setHandler(wakeSignal, () => {
    woken = true;
  });
  await condition(() => woken);
}
