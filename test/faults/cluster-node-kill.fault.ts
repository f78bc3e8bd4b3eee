// Case 7: a node of a 2-node Temporal cluster on PostgreSQL (`npm run cluster:start`, built and started by this case if
// needed) is SIGKILLed in the middle of a contention run and of a queue drain, then started again. Clients and the
// worker talk to node 1's frontend; node 2 is killed, so the history shards and task queue partitions it owned move to
// node 1 once the membership notices, and back when it returns. No overlap, no lost waiter, every job applied once in
// order per key.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { createCoordinator } from '../../lib/index.js';
import { kill, NAMESPACE, nodes, start } from '../../scripts/cluster.js';
import { killAll, startWorker, type Child } from './_helpers/children.js';
import { sleep, until } from './_helpers/client.js';
import { checkContention, startContention } from './_helpers/contention.js';
import { checkEffects, Effects, enqueueEffects, setupEffects } from './_helpers/effects.js';
import { checkLog, Fence } from './_helpers/fence.js';

const quick = process.env['FAULTS_QUICK'] === '1';
const KILLS = quick ? 1 : 3;
const KEYS = 5;
const JOBS_PER_KEY = 100;
const [entry, victim] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];

test(`killing a cluster node ${KILLS} times mid-run: no overlap, no lost waiter, every job applied once in order`, async (t) => {
  // A fresh machine builds the server first (minutes); later runs reuse it.
  t.timeout(20 * 60_000 + KILLS * 180_000);
  await start();
  await setupEffects();
  const fence = Fence.open();
  const effects = Effects.open();
  const env = { TEMPORAL_ADDRESS: entry.frontend, TEMPORAL_NAMESPACE: NAMESPACE };
  const connection = await Connection.connect({ address: entry.frontend });
  const children: Child[] = [];
  t.teardown(async () => {
    await killAll(children);
    await connection.close();
    await effects.close();
    await fence.close();
    // Leave the cluster whole for whoever uses it next.
    await start();
  });

  const taskQueue = `faults-cluster-${randomUUID().slice(0, 8)}`;
  const resource = `cluster-node-kill-${randomUUID()}`;
  const run = randomUUID();
  const started = performance.now();
  const worker = await startWorker(children, 'worker', { ...env, TASK_QUEUE: taskQueue, JOB_MS: 200 });
  const contention = startContention(children, { taskQueue, resource, processes: 2, perProcess: 4, env });
  const { enqueue } = createCoordinator({ client: new Client({ connection, namespace: NAMESPACE }), taskQueue });
  const keys = Array.from({ length: KEYS }, (_, k) => `cluster-node-kill-${run}-${k}`);
  await enqueueEffects(enqueue, run, keys, JOBS_PER_KEY);

  const sections = async () => checkLog(await fence.log(resource)).sections;
  const applied = async () => (await effects.applied(run)).length;
  await until(async () => (await sections()) >= 20, 120_000, 'the first 20 sections');
  const outages: number[] = [];
  let killsMidDrain = 0;
  for (let round = 1; round <= KILLS; round++) {
    await sleep(1_000 + Math.random() * 2_000);
    if ((await applied()) < KEYS * JOBS_PER_KEY) killsMidDrain++;
    const sectionsBefore = await sections();
    const killedAt = performance.now();
    await kill(victim.name);
    // The lock is back when a new section enters after the kill, with the node still down.
    await until(async () => (await sections()) > sectionsBefore, 120_000, `a section after kill ${round}`);
    outages.push(performance.now() - killedAt);
    await start();
  }
  await until(async () => (await applied()) >= KEYS * JOBS_PER_KEY, 300_000, 'every effect');
  const stats = await contention.stop();
  await worker.kill('SIGTERM');

  const verdict = checkLog(await fence.log(resource));
  t.log(
    `${KILLS} kills of ${victim.name} (${killsMidDrain} mid-drain), ${verdict.sections} critical sections and ` +
      `${KEYS * JOBS_PER_KEY} jobs in ${((performance.now() - started) / 1000).toFixed(0)} s; lock back ` +
      `${outages.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s after each kill (node still down)`,
  );
  t.is(killsMidDrain, KILLS, 'every kill landed while jobs were draining');
  checkContention(t, verdict, stats, 8);
  checkEffects(t, await effects.applied(run), keys, JOBS_PER_KEY);
});
