// The Temporal SDK (1.24.0) runs a workflow task that wrote no commands and the task of an update that directly follows
// it differently depending on how they are run: a worker without the workflow in its cache runs the first task's events
// and the update in one activation, at the update task's time and history length; a later replay runs them in two, as
// a worker that kept the workflow cached does. A workflow whose commands depend on that grouping then fails its next
// task on every worker, and every replay, with a nondeterminism error (https://github.com/temporalio/sdk-rust/issues/1146).
// Part 1 of the lock workflow's rule (lib/workflows/update-admission.ts) refuses such an update: the signal and the
// update meet in one activation, in the one task that could diverge.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { quietRuntime, serverAddress } from './_helpers/temporal.js';
import { bumpUpdate, pokeSignal } from './_helpers/update-ordering-workflows.js';

const workflowsPath = fileURLToPath(new URL('_helpers/update-ordering-workflows.ts', import.meta.url));
const fixturePath = fileURLToPath(new URL('fixtures/sdk-update-after-empty-task.json', import.meta.url));

let client: Client;
let nativeConnection: NativeConnection;
let workflowBundle: { code: string };
test.before(async () => {
  quietRuntime('sdk-update-ordering');
  const { address, namespace } = serverAddress();
  client = new Client({ connection: await Connection.connect({ address }), namespace });
  nativeConnection = await NativeConnection.connect({ address });
  // Webpack's report is INFO: only its warnings and errors are worth printing.
  workflowBundle = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
});
test.after.always(async () => {
  await nativeConnection?.close();
  await client?.connection.close();
});

/** Resolves once the workflow task that handled the signal has completed, with no command after it. */
async function signalTaskCompleted(handle: WorkflowHandle): Promise<void> {
  for (;;) {
    const events = (await handle.fetchHistory()).events ?? [];
    const signaled = events.findIndex((event) => event.workflowExecutionSignaledEventAttributes);
    if (events.slice(signaled).some((event) => event.workflowTaskCompletedEventAttributes)) return;
    await delay(20);
  }
}

/**
 * Records the shape of sdk-rust#1146 on a worker that caches no workflow, so each task is run from history: a `poke`
 * task that writes no command, then a `bump` update, whose task follows the empty one directly.
 */
async function recordUpdateAfterEmptyTask(taskQueue: string) {
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowBundle,
    maxCachedWorkflows: 0,
  });
  return worker.runUntil(async () => {
    const handle = await client.workflow.start('updateOrderingWorkflow', { workflowId: randomUUID(), taskQueue });
    await handle.signal(pokeSignal);
    await signalTaskCompleted(handle);
    const seen = await handle.executeUpdate(bumpUpdate);
    const history = await handle.fetchHistory();
    await handle.terminate('recorded');
    return { seen, history };
  });
}

test('an update after a task that wrote no command is run with that task live and apart on replay', async (t) => {
  const { seen, history } = await recordUpdateAfterEmptyTask(`sdk-update-ordering-${randomUUID().slice(0, 8)}`);
  if (process.env['RECORD_SDK_FIXTURE']) writeFileSync(fixturePath, historyToJSON(history));
  const events = history.events ?? [];
  const emptyTask = events.findLastIndex((event) => event.workflowTaskCompletedEventAttributes) - 3;
  t.truthy(events[emptyTask]?.workflowTaskCompletedEventAttributes, 'a task completed right before the update task');
  t.truthy(events[emptyTask + 1]?.workflowTaskScheduledEventAttributes, 'and wrote no command');
  // The poke's task came before the update's, yet the worker ran the poke at the update task's history length.
  t.is(seen.pokedHistoryLength, seen.bumpedHistoryLength);
  const replay = Worker.runReplayHistory({ workflowBundle }, history);
  const error = await t.throwsAsync(replay, { instanceOf: DeterminismViolationError });
  t.regex(error?.message ?? '', /Nondeterminism error: Timer machine does not handle this event/);
});

// When this test starts failing, an SDK release replays this history, recorded on 1.24.0, as it was made: part 1 of the
// rule in lib/workflows/update-admission.ts can go.
test('a history with an update after a task that wrote no command fails replay', async (t) => {
  const history = historyFromJSON(JSON.parse(readFileSync(fixturePath, 'utf8')));
  const replay = Worker.runReplayHistory({ workflowBundle }, history);
  await t.throwsAsync(replay, { instanceOf: DeterminismViolationError });
});
