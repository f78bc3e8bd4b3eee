// Case 5: the worker hosting the queue workflows and running the jobs is SIGKILLed again and again while 10 keys x 100
// jobs drain. At the protected resource (a table of effects keyed by job ID): every job's effect is applied exactly
// once, and each key's effects land in the order its jobs were enqueued.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { createCoordinator } from '../../lib/index.js';
import { serverAddress } from '../_helpers/temporal.js';
import { killAll, startWorker, type Child } from './_helpers/children.js';
import { sleep, until } from './_helpers/client.js';
import { checkEffects, Effects, enqueueEffects, setupEffects } from './_helpers/effects.js';

const quick = process.env['FAULTS_QUICK'] === '1';
const KILLS = quick ? 5 : 20;
const KEYS = 10;
const JOBS_PER_KEY = 100;
/** How long each job works before it applies its effect: long enough for kills to land mid-job. */
const JOB_MS = 150;

test(`SIGKILLing the queue worker ${KILLS} times while ${KEYS} keys x ${JOBS_PER_KEY} jobs drain: every effect applied once, in order per key`, async (t) => {
  t.timeout(KILLS * 60_000);
  await setupEffects();
  const effects = Effects.open();
  const { address, namespace } = serverAddress();
  const connection = await Connection.connect({ address });
  const taskQueue = `faults-queue-kill-${randomUUID().slice(0, 8)}`;
  const run = randomUUID();
  const children: Child[] = [];
  t.teardown(async () => {
    await killAll(children);
    await effects.close();
    await connection.close();
  });
  const startQueueWorker = (n: number) => startWorker(children, `worker ${n}`, { TASK_QUEUE: taskQueue, JOB_MS });

  const started = performance.now();
  let worker = await startQueueWorker(0);
  const { enqueue } = createCoordinator({ client: new Client({ connection, namespace }), taskQueue });
  const keys = Array.from({ length: KEYS }, (_, k) => `queue-kill-${run}-${k}`);
  await enqueueEffects(enqueue, run, keys, JOBS_PER_KEY);

  const total = KEYS * JOBS_PER_KEY;
  const applied = async () => (await effects.applied(run)).length;
  let killsMidDrain = 0;
  for (let kill = 1; kill <= KILLS; kill++) {
    await sleep(500 + Math.random() * 1_500);
    if ((await applied()) < total) killsMidDrain++;
    await worker.kill('SIGKILL');
    worker = await startQueueWorker(kill);
  }
  await until(async () => (await applied()) >= total, 300_000, `all ${total} effects`);
  await worker.kill('SIGTERM');

  const log = await effects.applied(run);
  const attempts = await effects.attempts(run);
  t.log(
    `${KILLS} kills (${killsMidDrain} while jobs were still draining), ${total} jobs in ` +
      `${((performance.now() - started) / 1000).toFixed(0)} s; ${attempts} attempts, so ${attempts - total} re-runs ` +
      'of a job whose worker died',
  );
  t.is(killsMidDrain, KILLS, 'every kill landed while jobs were draining');
  checkEffects(t, log, keys, JOBS_PER_KEY);
});
