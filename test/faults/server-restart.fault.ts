// Case 4: the Temporal server itself is restarted (a dev server persisting to SQLite with --db-filename) in the middle
// of a contention run and of a queue drain. After each restart the lock goes on with no overlap and no lost waiter, and
// every job is applied once, in order per key.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createCoordinator } from '../../lib/index.js';
import { startDevServer, type DevServer } from '../../lib/testing/index.js';
import { freePort } from '../_helpers/net.js';
import { killAll, startWorker, type Child } from './_helpers/children.js';
import { sleep, until } from './_helpers/client.js';
import { checkContention, startContention } from './_helpers/contention.js';
import { checkEffects, Effects, enqueueEffects, setupEffects } from './_helpers/effects.js';
import { checkLog, Fence } from './_helpers/fence.js';

const quick = process.env['FAULTS_QUICK'] === '1';
const RESTARTS = quick ? 1 : 3;
const KEYS = 5;
const JOBS_PER_KEY = 100;

test(`restarting the server ${RESTARTS} times mid-run: no overlap, no lost waiter, every job applied once in order`, async (t) => {
  t.timeout(RESTARTS * 180_000);
  await setupEffects();
  const fence = Fence.open();
  const effects = Effects.open();
  const scratch = mkdtempSync(join(tmpdir(), 'faults-server-restart-'));
  const port = await freePort();
  // A server of this case's own, not the shared one: TEMPORAL_ADDRESS is ignored so it really starts one.
  const serverOptions = {
    port,
    dbFilename: join(scratch, 'temporal.db'),
    env: { ...process.env, TEMPORAL_ADDRESS: '' },
  };
  let server: DevServer = await startDevServer(serverOptions);
  const env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace };
  const connection = await Connection.connect({ address: server.address });
  const children: Child[] = [];
  t.teardown(async () => {
    await killAll(children);
    await connection.close();
    await server.stop();
    await effects.close();
    await fence.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const taskQueue = `faults-restart-${randomUUID().slice(0, 8)}`;
  const resource = `server-restart-${randomUUID()}`;
  const run = randomUUID();
  const started = performance.now();
  const worker = await startWorker(children, 'worker', { ...env, TASK_QUEUE: taskQueue, JOB_MS: 200 });
  const contention = startContention(children, { taskQueue, resource, processes: 2, perProcess: 4, env });
  const { enqueue } = createCoordinator({ client: new Client({ connection, namespace: server.namespace }), taskQueue });
  const keys = Array.from({ length: KEYS }, (_, k) => `server-restart-${run}-${k}`);
  await enqueueEffects(enqueue, run, keys, JOBS_PER_KEY);

  const sections = async () => checkLog(await fence.log(resource)).sections;
  const applied = async () => (await effects.applied(run)).length;
  await until(async () => (await sections()) >= 20, 120_000, 'the first 20 sections');
  const outages: number[] = [];
  let restartsMidDrain = 0;
  for (let restart = 1; restart <= RESTARTS; restart++) {
    await sleep(1_000 + Math.random() * 2_000);
    if ((await applied()) < KEYS * JOBS_PER_KEY) restartsMidDrain++;
    const sectionsBefore = await sections();
    const stoppedAt = performance.now();
    await server.stop();
    server = await startDevServer(serverOptions);
    // The lock is back when a new section enters after the restart.
    await until(async () => (await sections()) > sectionsBefore, 120_000, `a section after restart ${restart}`);
    outages.push(performance.now() - stoppedAt);
  }
  await until(async () => (await applied()) >= KEYS * JOBS_PER_KEY, 300_000, 'every effect');
  const stats = await contention.stop();
  await worker.kill('SIGTERM');

  const verdict = checkLog(await fence.log(resource));
  t.log(
    `${RESTARTS} restarts (${restartsMidDrain} mid-drain), ${verdict.sections} critical sections and ` +
      `${KEYS * JOBS_PER_KEY} jobs in ${((performance.now() - started) / 1000).toFixed(0)} s; lock back after ` +
      `${outages.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s (server stop and start included)`,
  );
  t.is(restartsMidDrain, RESTARTS, 'every restart landed while jobs were draining');
  checkContention(t, verdict, stats, 8);
  checkEffects(t, await effects.applied(run), keys, JOBS_PER_KEY);
});
