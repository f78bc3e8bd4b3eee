// Case 1: the worker hosting the lock workflows is SIGKILLed again and again during a 16-contender run. At the fenced
// resource: no two critical sections overlap, and every waiter is eventually granted. Every run of the lock workflow
// that completed or continued as new replays; the others are of the known kind (see `closedRuns`).
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../../lib/worker.js';
import { DEFAULT_ID_PREFIX } from '../../lib/context.js';
import { lockIdPrefix } from '../../lib/ids.js';
import { quietRuntime, serverAddress, workflowBundle } from '../_helpers/temporal.js';
import { checkLog, Fence, setupFence } from './_helpers/fence.js';
import { killAll, startWorker, type Child } from './_helpers/children.js';
import { checkContention, startContention } from './_helpers/contention.js';
import { sleep, until } from './_helpers/client.js';

const quick = process.env['FAULTS_QUICK'] === '1';
const KILLS = quick ? 5 : 20;
const CONTENDER_PROCESSES = 2;
const CONTENDERS_PER_PROCESS = 8;
/** How a run fails when a worker cannot replay its history (the SDK's nondeterminism error, TMPRL1100). */
const NONDETERMINISM = /nondeterminism/i;
/** How waiters terminate a run whose workflow tasks keep failing (`terminateIfStuck` in lib/lock/client.ts). */
const STUCK = /^temporal-coordination: \d+ workflow tasks failed in a row/;

/** Runs `fn` with a client of its own on the test server (the contenders' clients live in other processes). */
async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const { address, namespace } = serverAddress();
  const connection = await Connection.connect({ address });
  try {
    return await fn(new Client({ connection, namespace }));
  } finally {
    await connection.close();
  }
}

/** Saves a run's history where `Worker.runReplayHistory` can replay it after the dev server is gone. */
async function saveHistory(handle: WorkflowHandle, runId = 'latest') {
  const dir = join(tmpdir(), 'temporal-coordination-faults');
  mkdirSync(dir, { recursive: true });
  const saved = join(dir, `${handle.workflowId.replace(/[^\w-]/g, '_')}-${runId}.json`);
  const history = await handle.fetchHistory();
  writeFileSync(saved, historyToJSON(history));
  return { saved, history };
}

/**
 * Why a lock workflow makes no progress: its failing workflow task, if any (a stuck run keeps retrying it). Saves the
 * history, so it can be replayed (`Worker.runReplayHistory`) after the dev server is gone.
 */
function diagnose(workflowId: string): Promise<string> {
  return withClient(async (client) => {
    const handle = client.workflow.getHandle(workflowId);
    const { raw } = await handle.describe();
    const task = raw.pendingWorkflowTask;
    const { saved, history } = await saveHistory(handle);
    let failure = 'none';
    for (const event of history.events ?? []) {
      const failed = event.workflowTaskFailedEventAttributes;
      if (failed) failure = `event ${event.eventId}: ${failed.failure?.message}`;
    }
    return (
      `workflow ${workflowId}: pending workflow task attempt ${task?.attempt ?? '-'}, ` +
      `last workflow task failure ${failure}; history saved to ${saved}`
    );
  });
}

/** One run of a lock workflow, and how it ended. */
interface RunRecord {
  readonly runId: string;
  /** `COMPLETED`, `CONTINUED_AS_NEW`, `FAILED`, `TERMINATED`, ... */
  readonly status: string;
  /** A failed run's failure message, a terminated run's reason; empty for the others. */
  readonly ending: string;
  /** Why its history does not replay with the workflow code, if it does not; the history is saved for study. */
  readonly replayError?: string;
}

/**
 * Every run of `workflowId`, once the workflow has closed, replayed with the workflow code. A history the same code
 * cannot replay fails its run when a worker next loads it (the worker's `workflowFailureErrorTypes`), or has its run
 * terminated by waiters as stuck, and a new run takes over: the TypeScript SDK 1.24 has been seen to write such
 * histories when a worker dies mid-task (README, Reliability).
 */
async function closedRuns(client: Client, workflowId: string): Promise<RunRecord[]> {
  const { runId: lastRunId } = await client.workflow.getHandle(workflowId).describe();
  // Visibility lags a little behind: wait until it lists every run closed, the last one included.
  const list = async () => {
    const runs = [];
    for await (const run of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(run);
    return runs;
  };
  await until(
    async () => {
      const runs = await list();
      return runs.some((run) => run.runId === lastRunId) && runs.every((run) => run.status.name !== 'RUNNING');
    },
    30_000,
    'every run listed closed',
  );
  quietRuntime('lock-worker-kill');
  const bundle = workflowBundle();
  const replayErrors = new Map<string, string>();
  for await (const result of Worker.runReplayHistories(
    bundle ? { workflowBundle: bundle } : { workflowsPath },
    client.workflow.list({ query: `WorkflowId = '${workflowId}'` }).intoHistories(),
  )) {
    if (result.error) {
      const { saved } = await saveHistory(client.workflow.getHandle(workflowId, result.runId), result.runId);
      replayErrors.set(result.runId, `${result.error.message.slice(0, 300)}; history saved to ${saved}`);
    }
  }
  const runs: RunRecord[] = [];
  for (const run of await list()) {
    let ending = '';
    if (run.status.name === 'FAILED' || run.status.name === 'TERMINATED') {
      const history = await client.workflow.getHandle(workflowId, run.runId).fetchHistory();
      const last = history.events?.at(-1);
      const failure = last?.workflowExecutionFailedEventAttributes?.failure;
      ending = failure ? (failure.message ?? '') : (last?.workflowExecutionTerminatedEventAttributes?.reason ?? '');
    }
    const replayError = replayErrors.get(run.runId);
    runs.push({ runId: run.runId, status: run.status.name, ending, ...(replayError ? { replayError } : {}) });
  }
  return runs;
}

test(`SIGKILLing the lock worker ${KILLS} times during a 16-contender run: no overlap at the fence, every waiter granted`, async (t) => {
  t.timeout(KILLS * 60_000);
  await setupFence();
  const fence = Fence.open();
  const taskQueue = `faults-worker-kill-${randomUUID().slice(0, 8)}`;
  const resource = `worker-kill-${randomUUID()}`;
  const workflowId = lockIdPrefix(DEFAULT_ID_PREFIX) + resource;
  const children: Child[] = [];
  t.teardown(async () => {
    await killAll(children);
    await fence.close();
  });
  const startLockWorker = (n: number) => startWorker(children, `worker ${n}`, { TASK_QUEUE: taskQueue });

  const started = performance.now();
  let worker = await startLockWorker(0);
  const contention = startContention(children, {
    taskQueue,
    resource,
    processes: CONTENDER_PROCESSES,
    perProcess: CONTENDERS_PER_PROCESS,
  });
  // Let the contention build up before the first kill.
  const sections = async () => checkLog(await fence.log(resource)).sections;
  await until(async () => (await sections()) >= 20, 120_000, 'the first 20 sections');

  const downtimes: number[] = [];
  for (let kill = 1; kill <= KILLS; kill++) {
    await sleep(500 + Math.random() * 2_500);
    const sectionsBefore = await sections();
    await worker.kill('SIGKILL');
    const killedAt = performance.now();
    worker = await startLockWorker(kill);
    // The lock is back when a new section enters after the kill.
    await until(
      async () => (await sections()) > sectionsBefore,
      120_000,
      `a section after kill ${kill}`,
      () => diagnose(workflowId),
    );
    downtimes.push(performance.now() - killedAt);
  }

  const stats = await contention.stop();
  // Idle, the workflow completes after its linger; its worker must still run for that.
  await withClient((client) =>
    until(
      async () => (await client.workflow.getHandle(workflowId).describe()).status.name !== 'RUNNING',
      60_000,
      'the lock workflow to close once idle',
      () => diagnose(workflowId),
    ),
  );
  await worker.kill('SIGTERM');

  const verdict = checkLog(await fence.log(resource));
  t.log(
    `${KILLS} kills, ${verdict.sections} critical sections in ${((performance.now() - started) / 1000).toFixed(0)} s ` +
      `(${verdict.overlaps.length} overlaps, ${verdict.rejected.length} rejected writes); ` +
      `lock back after a kill in ${Math.min(...downtimes).toFixed(0)}..${Math.max(...downtimes).toFixed(0)} ms ` +
      `(median ${downtimes.sort((a, b) => a - b)[downtimes.length >> 1]!.toFixed(0)}); ` +
      `longest wait for a grant ${Math.max(...stats.map((contender) => contender.maxWaitMs)).toFixed(0)} ms`,
  );
  checkContention(t, verdict, stats, CONTENDER_PROCESSES * CONTENDERS_PER_PROCESS);

  const runs = await withClient((client) => closedRuns(client, workflowId));
  const count = (status: string) => runs.filter((run) => run.status === status).length;
  const replaced = runs.filter((run) => run.status === 'FAILED' || run.status === 'TERMINATED');
  t.log(
    `${runs.length} runs: ${count('COMPLETED')} completed, ${count('CONTINUED_AS_NEW')} continued as new, ` +
      `${count('FAILED')} failed, ${count('TERMINATED')} terminated; ${runs.filter((run) => run.replayError).length} ` +
      `histories do not replay` +
      replaced.map((run) => `\n${run.status} ${run.runId}: ${run.ending}; replay: ${run.replayError ?? 'ok'}`).join(''),
  );
  t.deepEqual(
    runs.filter((run) => ['COMPLETED', 'CONTINUED_AS_NEW'].includes(run.status) && run.replayError),
    [],
    'every run that completed or continued as new replays',
  );
  // The known kind (README, Reliability): the worker fails a run it cannot replay (`workflowFailureErrorTypes`), or
  // waiters terminate a run whose workflow tasks keep failing (lib/lock/client.ts); a new run takes over either way.
  t.deepEqual(
    runs.filter(
      (run) =>
        !['COMPLETED', 'CONTINUED_AS_NEW'].includes(run.status) &&
        !(run.status === 'FAILED' && NONDETERMINISM.test(run.ending)) &&
        !(run.status === 'TERMINATED' && STUCK.test(run.ending)),
    ),
    [],
    'every other run failed with a nondeterminism error or was terminated by waiters as stuck',
  );
});
