// Case 6: waiters that die (SIGKILL) while waiting. Their requests stay queued; when a dead waiter's turn comes its
// grant is never claimed and lapses after the claim window, and the lock moves on. And a waiter paused (SIGSTOP) while
// its grant is made and lapses: when it resumes, the grant's answer reaches it late and must not be used.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createCoordinator, type Coordinator } from '../../lib/index.js';
import { lockTimings } from '../../lib/workflows/lock-protocol.js';
import { checkLog } from './_helpers/fence.js';
import { spawnHelper, type Child } from './_helpers/children.js';
import { sleep } from './_helpers/client.js';
import { faultSuite } from './_helpers/suite.js';

const suite = faultSuite('faults-waiter');

/** Resolves once `resource` has `count` waiters. */
async function untilWaitingFor(lockStatus: Coordinator['lockStatus'], resource: string, count: number): Promise<void> {
  const deadline = performance.now() + 60_000;
  while ((await lockStatus(resource)).waiting < count) {
    if (performance.now() > deadline) throw new Error(`never ${count} waiters`);
    await sleep(50);
  }
}

test('waiters SIGKILLed while waiting hold the lock up for at most the claim window each once their turn comes', async (t) => {
  const DEAD = 2;
  const { acquire, lockStatus } = createCoordinator({ client: suite.env.client, taskQueue: suite.env.taskQueue });
  const resource = `dead-waiter-${randomUUID()}`;

  const first = await acquire(resource);
  t.true(await suite.fence.write(resource, first, 'first', 'enter'));
  const dead: Child[] = [];
  for (let i = 0; i < DEAD; i++) {
    const waiter = spawnHelper('holder.ts', `dead waiter ${i}`, {
      TASK_QUEUE: suite.env.taskQueue,
      RESOURCE: resource,
      NAME: `dead-${i}`,
    });
    suite.children.push(waiter);
    dead.push(waiter);
    await untilWaitingFor(lockStatus, resource, i + 1);
  }
  const last = acquire(resource);
  await untilWaitingFor(lockStatus, resource, DEAD + 1);
  await Promise.all(dead.map((waiter) => waiter.kill('SIGKILL')));

  // Watch the holder change hands: each dead waiter's grant, then the live waiter's.
  t.true(await suite.fence.write(resource, first, 'first', 'exit'));
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
  t.true(await suite.fence.write(resource, lease, 'last', 'enter'));
  t.true(await suite.fence.write(resource, lease, 'last', 'exit'));
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
  t.deepEqual(verdict.overlaps, [], 'no two holders believed they held at once');
  t.deepEqual(verdict.unbelieved, [], 'every write was made while its writer believed it held the lease');
  t.deepEqual(verdict.openedOverOpen, []);
  t.deepEqual(verdict.rejected, []);
});

test('a waiter paused while its grant is made and lapses asks again when it resumes, never using the stale grant', async (t) => {
  const { acquire, lockStatus } = createCoordinator({ client: suite.env.client, taskQueue: suite.env.taskQueue });
  const resource = `paused-waiter-${randomUUID()}`;
  const first = await acquire(resource);
  t.true(await suite.fence.write(resource, first, 'first', 'enter'));
  const waiter = spawnHelper('holder.ts', 'paused waiter', {
    TASK_QUEUE: suite.env.taskQueue,
    RESOURCE: resource,
    NAME: 'paused',
  });
  suite.children.push(waiter);
  await untilWaitingFor(lockStatus, resource, 1);
  // Its blocking wait is open at the server; the grant's answer will sit unread until it resumes.
  await sleep(500);
  await waiter.kill('SIGSTOP');
  const next = acquire(resource);
  await untilWaitingFor(lockStatus, resource, 2);
  t.true(await suite.fence.write(resource, first, 'first', 'exit'));
  await first.release();

  const lease = await next;
  t.is(lease.token, first.token + 2, 'the paused waiter was granted first, and its grant lapsed unclaimed');
  t.true(await suite.fence.write(resource, lease, 'next', 'enter'));
  // The paused waiter resumes while the next holder is inside; it reads its grant's answer now, seconds late.
  await waiter.kill('SIGCONT');
  await sleep(2_000);
  t.true(await suite.fence.write(resource, lease, 'next', 'exit'), 'the next holder is undisturbed');
  await lease.release();
  const resumed = await waiter.waitFor((message) => typeof message['entered'] === 'number', 60_000, 'its grant');
  await waiter.kill('SIGKILL');

  t.true((resumed['entered'] as number) > lease.token, 'the resumed waiter entered with a new grant');
  const verdict = checkLog(await suite.fence.log(resource));
  t.deepEqual(verdict.overlaps, [], 'no two holders believed they held at once');
  t.deepEqual(verdict.unbelieved, [], 'every write was made while its writer believed it held the lease');
  t.deepEqual(verdict.rejected, [], 'no write with the lapsed grant reached the resource');
});
