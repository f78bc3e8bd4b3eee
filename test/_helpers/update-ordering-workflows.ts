// A minimal workflow for test/sdk-update-ordering.test.ts, unrelated to the coordination workflows. Its `poke` signal
// writes no command, so an update sent after it is run in a task that directly follows an empty one.
import { condition, defineSignal, defineUpdate, setHandler, sleep, workflowInfo } from '@temporalio/workflow';

export const pokeSignal = defineSignal('poke');
export const bumpUpdate = defineUpdate<Seen>('bump');

/** What the workflow saw when it handled the last poke and a bump: workflow time and history length. */
export interface Seen {
  readonly pokedAt: number;
  readonly bumpedAt: number;
  readonly pokedHistoryLength: number;
  readonly bumpedHistoryLength: number;
}

/**
 * Starts a timer for a bump handled in a later activation than the poke before it, none for one handled in the same
 * activation. Deterministic code by the SDK's contract: it reads only workflow time. Never completes.
 */
export async function updateOrderingWorkflow(): Promise<void> {
  let pokedAt = -1;
  let pokedHistoryLength = -1;
  setHandler(pokeSignal, () => {
    pokedAt = Date.now();
    pokedHistoryLength = workflowInfo().historyLength;
  });
  setHandler(bumpUpdate, () => {
    const bumpedAt = Date.now();
    if (bumpedAt !== pokedAt) void sleep('1 day');
    return { pokedAt, bumpedAt, pokedHistoryLength, bumpedHistoryLength: workflowInfo().historyLength };
  });
  await condition(() => false);
}
