// Case 5: the worker hosting the queue workflows and running the jobs is SIGKILLed again and again, each time while a
// job runs on it, while 10 keys x 100 jobs drain. In the raw record of every job attempt: every job finished, each
// key's jobs ran one at a time in the order they were enqueued, and a job ran again only when the worker of its earlier
// attempt had been killed.
import test, { type ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { createCoordinator } from '../../lib/index.js';
import { serverAddress } from '../_helpers/temporal.js';
import { killAll, startWorker, type Child } from './_helpers/children.js';
import { sleep, until } from './_helpers/client.js';
import { checkAttempts, Effects, enqueueEffects, setupEffects } from './_helpers/effects.js';

const quick = process.env['FAULTS_QUICK'] === '1';
const KILLS = quick ? 5 : 20;
const KEYS = 10;
const JOBS_PER_KEY = 100;
/** How long each job works before it applies its effect: long enough for a kill to land mid-job on purpose. */
const JOB_MS = 150;

/** A run of its own: the effects table, a task queue, a coordinator on it, and worker children killed at the end. */
async function setUp(t: ExecutionContext, label: string) {
  await setupEffects();
  const effects = Effects.open();
  const { address, namespace } = serverAddress();
  const connection = await Connection.connect({ address });
  const taskQueue = `faults-queue-${label}-${randomUUID().slice(0, 8)}`;
  const children: Child[] = [];
  t.teardown(async () => {
    await killAll(children);
    await effects.close();
    await connection.close();
  });
  const startQueueWorker = (n: number) => startWorker(children, `worker ${n}`, { TASK_QUEUE: taskQueue, JOB_MS });
  const { enqueue } = createCoordinator({ client: new Client({ connection, namespace }), taskQueue });
  return { effects, run: randomUUID(), startQueueWorker, enqueue };
}

test(`SIGKILLing the queue worker ${KILLS} times while ${KEYS} keys x ${JOBS_PER_KEY} jobs drain: one job of a key at a time, in order, re-run only after a kill`, async (t) => {
  t.timeout(KILLS * 60_000);
  const { effects, run, startQueueWorker, enqueue } = await setUp(t, 'kill');

  const started = performance.now();
  let worker = await startQueueWorker(0);
  const keys = Array.from({ length: KEYS }, (_, k) => `queue-kill-${run}-${k}`);
  await enqueueEffects(enqueue, run, keys, JOBS_PER_KEY);

  const total = KEYS * JOBS_PER_KEY;
  const finished = () => effects.finishedJobs(run);
  const midJob = (name: string) => untilMidJob(effects, run, name);
  const ended = new Map<string, { at: number; killed: boolean }>();
  for (let kill = 1; kill <= KILLS; kill++) {
    // At a different point of the worker's life each time, but always while a job runs on it.
    await sleep(Math.random() * 1_000);
    await midJob(worker.name);
    await worker.kill('SIGKILL');
    ended.set(worker.name, { at: Date.now(), killed: true });
    worker = await startQueueWorker(kill);
  }
  await until(async () => (await finished()) >= total, 300_000, `all ${total} jobs finished`);
  await worker.kill('SIGTERM');
  ended.set(worker.name, { at: Date.now(), killed: false });

  const attempts = await effects.attempts(run);
  const summary = checkAttempts(t, attempts, await effects.applied(run), keys, JOBS_PER_KEY, { ended });
  t.log(
    `${KILLS} kills, ${total} jobs in ${((performance.now() - started) / 1000).toFixed(0)} s; ${summary.attempts} ` +
      `attempts: ${summary.cutShort} cut short by a kill, ${summary.reruns} re-runs (${summary.excuses.kill} after a ` +
      `kill, ${summary.excuses.timeout} after an attempt overran its timeout in a live worker; ` +
      `${summary.alreadyApplied} found the effect applied)`,
  );
  const cut = new Set(attempts.filter((attempt) => attempt.finishedAt === null).map((attempt) => attempt.worker));
  t.deepEqual(
    [...ended].filter(([name, end]) => end.killed && !cut.has(name)).map(([name]) => name),
    [],
    'every kill cut a job attempt short',
  );
});

/** Resolves once an attempt that started on `name` less than JOB_MS / 3 ago still runs: a kill now lands mid-job. */
async function untilMidJob(effects: Effects, run: string, name: string): Promise<void> {
  const deadline = performance.now() + 60_000;
  while ((await effects.running(run, name, Date.now() - JOB_MS / 3)) === 0) {
    if (performance.now() > deadline) throw new Error(`no job attempt started on ${name} within 60 s`);
    await sleep(20);
  }
}

const RATE_KILLS = quick ? 2 : 5;
const RATE_KEYS = 2;
const RATE_JOBS = 30;

test(`SIGKILLing the queue worker ${RATE_KILLS} times while ${RATE_KEYS} rate-limited keys x ${RATE_JOBS} jobs drain: every job once at the fence, in order`, async (t) => {
  t.timeout(10 * 60_000);
  const { effects, run, startQueueWorker, enqueue } = await setUp(t, 'rate');
  let worker = await startQueueWorker(0);
  const keys = Array.from({ length: RATE_KEYS }, (_, k) => `queue-rate-kill-${run}-${k}`);
  await enqueueEffects(enqueue, run, keys, RATE_JOBS, { rateLimit: { max: 4, per: '1s' } });

  const ended = new Map<string, { at: number; killed: boolean }>();
  for (let kill = 1; kill <= RATE_KILLS; kill++) {
    await sleep(Math.random() * 1_000);
    await untilMidJob(effects, run, worker.name);
    await worker.kill('SIGKILL');
    ended.set(worker.name, { at: Date.now(), killed: true });
    worker = await startQueueWorker(kill);
  }
  const total = RATE_KEYS * RATE_JOBS;
  await until(async () => (await effects.finishedJobs(run)) >= total, 300_000, `all ${total} jobs finished`);
  await worker.kill('SIGTERM');
  ended.set(worker.name, { at: Date.now(), killed: false });
  const summary = checkAttempts(t, await effects.attempts(run), await effects.applied(run), keys, RATE_JOBS, { ended });
  t.log(
    `${RATE_KILLS} kills, ${total} rate-limited jobs, ${summary.attempts} attempts: ${summary.cutShort} cut short ` +
      `by a kill, ${summary.reruns} re-runs`,
  );
  t.true(summary.cutShort >= RATE_KILLS, 'every kill cut a job attempt short');
});
