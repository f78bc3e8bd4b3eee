import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@temporalio/client';
import { createCoordinator, LockTimeoutError } from '../lib/index.js';
import { acquireSignal, lockTimings, lockWorkflow, releaseSignal, requestStatesQuery } from '../lib/workflows/index.js';
import { BLOCKING_UP_TO_MEMO, headSlots } from '../lib/workflows/lock-protocol.js';
import { lockWorkflowId } from './_helpers/lock-ids.js';
import { untilWaiting } from './_helpers/locks.js';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';

// How clients and the lock workflow talk: the workflow's ID and runs, the memo far-back waiters read, bare signals as
// a client that dies or retries sends them, and the protocol's timings. The public contract is test/lock.test.ts.

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('lock-protocol');
});
test.after.always(async () => {
  await env?.teardown();
});

const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });

/** The ttl of a bare request: far past the claim window, so only the claim window frees a grant made to it. */
const RAW_TTL = 30_000;
/** Sends a bare acquire request, as a client that then dies would. */
async function rawAcquire(resourceId: string, requestId: string) {
  await env.client.workflow.signalWithStart(lockWorkflow, {
    workflowId: lockWorkflowId(resourceId),
    taskQueue: env.taskQueue,
    args: [{}],
    signal: acquireSignal,
    signalArgs: [{ requestId, ttl: RAW_TTL, limit: 1 }],
  });
}

test('far-back waiters learn when to block from the memo the workflow publishes, not by polling a query', async (t) => {
  // Without the published head of the queue, the waiters past the head slots would poll their position with
  // queries, many times each while the holder holds.
  let queries = 0;
  let memoReads = 0;
  const client = new Client({
    connection: env.client.connection,
    namespace: env.namespace,
    interceptors: {
      workflow: [
        {
          query: (input, next) => {
            if (input.queryType === requestStatesQuery.name) queries++;
            return next(input);
          },
          describe: (input, next) => {
            memoReads++;
            return next(input);
          },
        },
      ],
    },
  });
  const { acquire } = createCoordinator({ client, taskQueue: env.taskQueue });
  const id = env.id('far-back');
  const first = await acquire(id);
  // Claimed before the queue builds up: on a loaded machine a claim can miss the claim window while the workflow is
  // busy with 21 acquires, and the waiters would then be granted and gone before they are counted.
  await first.renew();
  const waiterCount = 3 * headSlots(1);
  const order: number[] = [];
  const waiters: Promise<void>[] = [];
  for (let i = 0; i < waiterCount; i++) {
    waiters.push(
      acquire(id).then(async (lease) => {
        order.push(i);
        await lease.release();
      }),
    );
    await untilWaiting(coordinator(), id, i + 1);
  }
  const queriesBeforeHold = queries;
  await sleep(1_500);
  const queriesWhileHeld = queries - queriesBeforeHold;
  const { memo } = await env.client.workflow.getHandle(lockWorkflowId(id)).describe();
  await first.release();
  await Promise.all(waiters);
  t.deepEqual(
    order,
    Array.from({ length: waiterCount }, (_, i) => i),
  );
  t.is(typeof memo?.[BLOCKING_UP_TO_MEMO], 'number');
  t.true(memoReads > 0);
  // About one look each when queued and none while the holder holds, where waiters polling a query would look every
  // few tens of ms (hundreds of queries in 1.5 s); a slow describe or a failed blocking wait on a loaded machine sends
  // a waiter back to one query.
  t.true(queriesWhileHeld <= waiterCount, `${queriesWhileHeld} queries while the holder held the lock`);
  t.true(queries <= 2 * waiterCount, `${queries} queries in all for ${waiterCount} waiters`);
});

test('a queue no longer than the head slots publishes nothing: no history event per hand-off for the memo', async (t) => {
  const { acquire } = coordinator();
  const id = env.id('short-queue');
  const first = await acquire(id);
  const waiters = Array.from({ length: headSlots(1) }, () => acquire(id).then((lease) => lease.release()));
  await untilWaiting(coordinator(), id, headSlots(1));
  await first.release();
  await Promise.all(waiters);
  const history = await env.client.workflow.getHandle(lockWorkflowId(id)).fetchHistory();
  t.false(history.events!.some((event) => event.workflowPropertiesModifiedEventAttributes));
});

test('waitTimeout ends the wait on time when no worker answers for the lock', async (t) => {
  const { acquire } = createCoordinator({ client: env.client, taskQueue: `unserved-${env.taskQueue}` });
  const id = env.id('unserved');
  const started = performance.now();
  await t.throwsAsync(acquire(id, { waitTimeout: '500ms' }), { instanceOf: LockTimeoutError });
  const took = performance.now() - started;
  // The withdrawal that follows is a signal, which needs no worker; the wait itself ends at 500 ms.
  t.true(took < 3_000, `gave up after ${took} ms`);
  await env.client.workflow.getHandle(lockWorkflowId(id)).terminate('test done');
});

test('a release with a forged token has no effect', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('forged');
  const lease = await acquire(id);
  const handle = env.client.workflow.getHandle(lockWorkflowId(id));
  await handle.signal(releaseSignal, { requestId: 'someone-else', token: lease.token });
  await handle.signal(releaseSignal, { requestId: 'someone-else', token: lease.token + 1 });
  t.deepEqual(
    (await lockStatus(id)).holders.map((holder) => holder.token),
    [lease.token],
  );
  await lease.release();
});

test('duplicate acquire requests with one request id queue once', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('dedup');
  const holder = await acquire(id);
  await rawAcquire(id, 'retried-request');
  await rawAcquire(id, 'retried-request');
  t.is((await lockStatus(id)).waiting, 1);
  await holder.release();
});

test('a grant to a waiter that died is revoked after the claim window and the next waiter is granted', async (t) => {
  const { acquire } = coordinator();
  const id = env.id('dead-waiter');
  const holder = await acquire(id);
  await rawAcquire(id, 'dead-client');
  const next = acquire(id);
  await untilWaiting(coordinator(), id, 2);
  const released = performance.now();
  await holder.release();
  const lease = await next;
  const waited = performance.now() - released;
  t.log(`granted ${waited.toFixed(0)} ms after the release, claim window ${lockTimings.claimWindow} ms`);
  t.is(lease.token, holder.token + 2, 'the dead waiter was granted in its turn');
  t.true(waited >= lockTimings.claimWindow - 100, 'its grant lasted the claim window');
  // Revoked unclaimed, not at the end of its 30 s ttl. How soon after the window the next grant comes is a matter of
  // load: the fault suite bounds it (test/faults/lock-waiter.fault.ts).
  t.true(waited < RAW_TTL - lockTimings.claimWindow, `granted ${waited.toFixed(0)} ms after the release`);
  await lease.release();
});

test('tokens keep increasing after the workflow exits when idle and a new run starts', async (t) => {
  const { withLock, lockStatus } = coordinator();
  const id = env.id('idle-exit');
  const first = await withLock(id, (lease) => lease.token);
  const handle = env.client.workflow.getHandle(lockWorkflowId(id));
  const { runId } = await handle.describe();
  await handle.result(); // completes after the linger
  t.false((await lockStatus(id)).running);
  const second = await withLock(id, (lease) => lease.token);
  t.true(second > first);
  t.not((await handle.describe()).runId, runId);
});

test('acquires that race the idle exit are all granted, whether they reach the lingering run or a new one', async (t) => {
  const { withLock } = coordinator();
  // Each loop re-acquires at a different moment around the end of the linger, when the run decides to exit: from
  // 600 ms before it (the request reaches the lingering run) to 800 ms after (it starts a new run).
  const loops = Array.from({ length: 8 }, async (_, loop) => {
    const id = env.id(`exit-race-${loop}`);
    const handle = env.client.workflow.getHandle(lockWorkflowId(id));
    const runIds: string[] = [];
    const lockOnce = () =>
      withLock(id, async () => void runIds.push((await handle.describe()).runId), { waitTimeout: '20s' });
    await lockOnce();
    for (let i = 0; i < 4; i++) {
      await sleep(lockTimings.linger - 600 + loop * 50 + i * 350);
      await lockOnce();
    }
    return runIds;
  });
  const runIds = await Promise.all(loops);
  t.deepEqual(
    runIds.map((ids) => ids.length),
    Array(8).fill(5),
    'every acquire was granted',
  );
  const again = runIds.flatMap((ids) => ids.slice(1).map((runId, i) => (runId === ids[i] ? 'same' : 'new')));
  const sameRun = again.filter((side) => side === 'same').length;
  t.log(`re-acquires granted by the lingering run: ${sameRun}, by a new run: ${again.length - sameRun}`);
  t.true(sameRun > 0, 'some re-acquires reached the lingering run');
  t.true(sameRun < again.length, 'some re-acquires came after the run exited');
});
