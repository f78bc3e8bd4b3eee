// Case 6: waiters that die (SIGKILL) while waiting. Their requests stay queued; when a dead waiter's turn comes its
// grant is never claimed and lapses after the claim window, and the lock moves on.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createCoordinator } from '../../lib/index.js';
import { lockTimings } from '../../lib/workflows/lock-workflow.js';
import { checkLog } from './_helpers/fence.js';
import { spawnHelper, type Child } from './_helpers/children.js';
import { sleep } from './_helpers/client.js';
import { faultSuite } from './_helpers/suite.js';

const suite = faultSuite('faults-waiter');

test('waiters SIGKILLed while waiting hold the lock up for at most the claim window each once their turn comes', async (t) => {
  const DEAD = 2;
  const { acquire, lockStatus } = createCoordinator({ client: suite.env.client, taskQueue: suite.env.taskQueue });
  const resource = `dead-waiter-${randomUUID()}`;
  const untilWaiting = async (count: number) => {
    const deadline = performance.now() + 60_000;
    while ((await lockStatus(resource)).waiting < count) {
      if (performance.now() > deadline) throw new Error(`never ${count} waiters`);
      await sleep(50);
    }
  };

  const first = await acquire(resource);
  t.true(await suite.fence.write(resource, first.token, 'first', 'enter'));
  const dead: Child[] = [];
  for (let i = 0; i < DEAD; i++) {
    const waiter = spawnHelper('holder.ts', `dead waiter ${i}`, {
      TASK_QUEUE: suite.env.taskQueue,
      RESOURCE: resource,
      NAME: `dead-${i}`,
    });
    suite.children.push(waiter);
    dead.push(waiter);
    await untilWaiting(i + 1);
  }
  const last = acquire(resource);
  await untilWaiting(DEAD + 1);
  await Promise.all(dead.map((waiter) => waiter.kill('SIGKILL')));

  // Watch the holder change hands: each dead waiter's grant, then the live waiter's.
  t.true(await suite.fence.write(resource, first.token, 'first', 'exit'));
  await first.release();
  const releasedAt = performance.now();
  const grants: { token: number; at: number }[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const [holder] = (await lockStatus(resource)).holders;
      if (holder && holder.token !== grants.at(-1)?.token) grants.push({ token: holder.token, at: performance.now() });
      await sleep(50);
    }
  })();
  const lease = await last;
  const waited = performance.now() - releasedAt;
  watching = false;
  await watcher;
  t.true(await suite.fence.write(resource, lease.token, 'last', 'enter'));
  t.true(await suite.fence.write(resource, lease.token, 'last', 'exit'));
  await lease.release();

  const held = grants
    .filter((grant) => grant.token !== lease.token)
    .map((grant, i, all) => (all[i + 1]?.at ?? releasedAt + waited) - grant.at);
  t.log(
    `${DEAD} dead waiters: the live one was granted ${waited.toFixed(0)} ms after the release; each dead grant ` +
      `held the lock ${held.map((ms) => ms.toFixed(0)).join(' and ')} ms (claim window ${lockTimings.claimWindow} ms)`,
  );
  t.is(lease.token, first.token + DEAD + 1, 'each dead waiter was granted in turn, then the live one');
  // Each lapse takes the claim window plus one workflow task; allow 2 s per hand-off on a loaded machine.
  t.true(waited <= DEAD * (lockTimings.claimWindow + 2_000), `waited ${waited.toFixed(0)} ms`);
  const verdict = checkLog(await suite.fence.log(resource));
  t.deepEqual(verdict.acceptedOverlaps, []);
  t.deepEqual(verdict.openedOverOpen, []);
  t.deepEqual(verdict.rejected, []);
});
