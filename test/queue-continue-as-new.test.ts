// Continue-as-new under load: a server of its own suggests it every 200 history events, and one key runs 5,000 jobs.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { queueIdPrefix } from '../lib/ids.js';
import { createCoordinator, JobCancelledError, JobNotFoundError, type Job } from '../lib/index.js';
import { startDevServer, type DevServer } from '../lib/testing/index.js';
import { createWorker } from '../lib/worker.js';
import { queueLimits } from '../lib/workflows/queue-core.js';
import type { queueWorkflow } from '../lib/workflows/queue-workflow.js';
import { logFile, quietRuntime, workflowBundle } from './_helpers/temporal.js';

const JOBS = 5_000;
const started: number[] = [];
let running = 0;
let overlaps = 0;
/** `mark` jobs by key: label, start time and the run that started it. */
const marks = new Map<string, { label: string; at: number; runId: string }[]>();

let server: DevServer;
let connection: Connection;
let nativeConnection: NativeConnection;
let worker: Worker;
let workerRun: Promise<void>;
let client: Client;
const taskQueue = `queue-can-${randomUUID().slice(0, 8)}`;

test.before(async () => {
  quietRuntime('queue-continue-as-new');
  // Always a server of its own (even under `npm test`), for the low continue-as-new threshold. Eager activity dispatch
  // halves each job's round trip on the dev server, which keeps 5,000 strictly sequential jobs to a few minutes.
  server = await startDevServer({
    env: { ...process.env, TEMPORAL_ADDRESS: '' },
    dynamicConfig: {
      'limit.historyCount.suggestContinueAsNew': 200,
      'system.enableActivityEagerExecution': true,
    },
    logFile: logFile('queue-continue-as-new-server'),
  });
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: server.namespace });
  nativeConnection = await NativeConnection.connect({ address: server.address });
  const bundle = workflowBundle();
  worker = await createWorker({
    ...(bundle ? { workflowBundle: bundle } : {}),
    connection: nativeConnection,
    namespace: server.namespace,
    taskQueue,
    jobs: {
      mark(key: string, label: string) {
        const list = marks.get(key) ?? [];
        marks.set(key, list);
        list.push({ label, at: Date.now(), runId: Context.current().info.workflowExecution!.runId });
        return label;
      },
      async count(index: number) {
        running++;
        if (running > 1) overlaps++;
        started.push(index);
        // Runs across a timer, so a second job of the key started meanwhile would be counted.
        await new Promise((resolve) => setTimeout(resolve, 1));
        running--;
        return index;
      },
    },
  });
  workerRun = worker.run();
});

test.after.always(async () => {
  worker?.shutdown();
  await workerRun;
  await nativeConnection?.close();
  await connection?.close();
  await server?.stop();
});

test('5,000 jobs on one key run in order across many continue-as-new runs', async (t) => {
  t.timeout(15 * 60_000);
  const { enqueue } = createCoordinator({ client, taskQueue });
  const key = `can-${randomUUID()}`;
  const t0 = performance.now();
  const handles: Job<number>[] = [];
  // Sequential enqueues fix the order the queue must keep; the jobs start running while the rest arrive.
  for (let index = 0; index < JOBS; index++) handles.push(await enqueue<number>(key, 'count', [index]));
  const enqueued = performance.now();
  const last = handles.at(-1)!;
  t.is(await last.result(), JOBS - 1);
  const drained = performance.now();
  t.log(
    `enqueued ${JOBS} in ${((enqueued - t0) / 1000).toFixed(1)} s, all done after ${((drained - t0) / 1000).toFixed(1)} s`,
  );

  t.is(overlaps, 0, 'never two jobs of the key at once');
  t.is(started.length, JOBS, 'each job ran exactly once');
  t.true(
    started.every((index, position) => index === position),
    'jobs ran in enqueue order',
  );

  // Results within the retention bound survive continue-as-new; older ones are reported as forgotten.
  t.is(await handles[JOBS - queueLimits.finishedWindow]!.result(), JOBS - queueLimits.finishedWindow);
  await t.throwsAsync(handles[0]!.result(), { instanceOf: JobNotFoundError });

  // The chain's last run exits idle and returns what it still remembers.
  const workflowId = queueIdPrefix(DEFAULT_ID_PREFIX) + key;
  const final = await client.workflow.result<typeof queueWorkflow>(workflowId);
  t.is(final.processed, JOBS);
  t.is(final.finished.length, queueLimits.finishedWindow);
  t.is(final.finished.at(-1)?.jobId, last.id);
  const runs = await countRuns(workflowId);
  t.log(`${runs} runs`);
  t.true(runs > 20, 'the queue continued-as-new many times');
});

test('a delayed job and a cancelled one, pending across continue-as-new, keep their place and their cancel', async (t) => {
  t.timeout(5 * 60_000);
  const { enqueue } = createCoordinator({ client, taskQueue });
  const key = `can-delayed-${randomUUID()}`;
  const workflowId = queueIdPrefix(DEFAULT_ID_PREFIX) + key;
  const accepted = Date.now();
  const delayed = await enqueue(key, 'mark', [key, 'delayed'], { delay: '10s' });
  const firstRun = (await client.workflow.getHandle(workflowId).describe()).runId;
  const cancelled = await enqueue(key, 'mark', [key, 'cancelled']);
  t.deepEqual(await cancelled.cancel({ reason: 'not needed' }), { cancelled: true });
  // 150 enqueue signals behind the delayed job: about 600 history events, past the suggestion (200) while it waits.
  const labels = Array.from({ length: 150 }, (_, i) => `job-${i}`);
  const handles = [];
  for (const label of labels) handles.push(await enqueue(key, 'mark', [key, label]));
  t.is(await handles.at(-1)!.result(), labels.at(-1));
  t.is(await delayed.result(), 'delayed', 'its result is read from the run that ran it');
  const list = marks.get(key) ?? [];
  t.deepEqual(
    list.map((mark) => mark.label),
    ['delayed', ...labels],
  );
  t.true(list[0]!.at >= accepted + 10_000, 'the delayed job waited for its time');
  t.not(list[0]!.runId, firstRun, 'it started in a later run than the one that accepted it');
  const error = await t.throwsAsync(cancelled.result(), { instanceOf: JobCancelledError });
  t.is(error?.reason, 'not needed', 'the cancel was carried to the run that answers');
});

async function countRuns(workflowId: string): Promise<number> {
  let runs = 0;
  for await (const _ of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs++;
  return runs;
}
