import test from 'ava';
import { Client, Connection } from '@temporalio/client';
import {
  createCoordinator,
  LeaseLostError,
  LimitMismatchError,
  LockTimeoutError,
  ServerUnavailableError,
  type Lease,
} from '../lib/index.js';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { lockIdPrefix } from '../lib/ids.js';
import { acquireSignal, releaseSignal, requestStatesQuery } from '../lib/workflows/definitions.js';
import { BLOCKING_UP_TO_MEMO, headSlots, lockTimings } from '../lib/workflows/lock-protocol.js';
import { lockWorkflow } from '../lib/workflows/lock-workflow.js';
import { aborted, startTestEnv, type TestEnv } from './_helpers/temporal.js';

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('lock');
});
test.after.always(async () => {
  await env?.teardown();
});

const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** How late a timer of this process may fire while the 1,000-waiter test shares its event loop. */
const TIMER_SLACK = 1_000;

/** The ttl of a bare request: far past the claim window, so only the claim window frees a grant made to it. */
const RAW_TTL = 30_000;
/** Sends a bare acquire request, as a client that then dies would. */
async function rawAcquire(resourceId: string, requestId: string) {
  await env.client.workflow.signalWithStart(lockWorkflow, {
    workflowId: lockIdPrefix(DEFAULT_ID_PREFIX) + resourceId,
    taskQueue: env.taskQueue,
    args: [{}],
    signal: acquireSignal,
    signalArgs: [{ requestId, ttl: RAW_TTL, limit: 1 }],
  });
}

/**
 * Waits until exactly `count` requests wait for `resourceId` (so requests are known to have reached the workflow in
 * order, or a withdrawal to have taken effect); fails, rather than hangs, if that never happens.
 */
async function untilWaiting(resourceId: string, count: number) {
  const { lockStatus } = coordinator();
  const deadline = performance.now() + 60_000;
  let waiting: number;
  while ((waiting = (await lockStatus(resourceId)).waiting) !== count) {
    if (performance.now() > deadline) throw new Error(`${waiting} waiters on ${resourceId}, never ${count}`);
    await sleep(20);
  }
}

/**
 * Queues a waiter behind `holder`, releases `holder` and returns the token that waiter is granted. Grants of one run
 * number their tokens one by one, so a request that gave up but was granted anyway would have taken `holder.token + 1`.
 */
async function nextGrantAfter(holder: Lease): Promise<number> {
  const next = coordinator().acquire(holder.resourceId);
  await untilWaiting(holder.resourceId, 1);
  await holder.release();
  const lease = await next;
  await lease.release();
  return lease.token;
}

test('withLock returns what fn returns and releases the lock', async (t) => {
  const { withLock, lockStatus } = coordinator();
  const id = env.id('basic');
  const result = await withLock(id, async (lease) => {
    t.true(Number.isSafeInteger(lease.token));
    t.false(lease.signal.aborted);
    t.true(lease.expiresAt.getTime() > Date.now());
    return 42;
  });
  t.is(result, 42);
  t.deepEqual((await lockStatus(id)).holders, []);
});

test('at most one holder at a time across coordinators, with increasing tokens', async (t) => {
  const id = env.id('mutex');
  let inside = 0;
  let overlaps = 0;
  const tokens: number[] = [];
  // Separate coordinators stand for separate processes: nothing is shared but the server.
  await Promise.all(
    Array.from({ length: 12 }, () =>
      coordinator().withLock(id, async (lease) => {
        if (++inside > 1) overlaps++;
        tokens.push(lease.token);
        await sleep(5);
        inside--;
      }),
    ),
  );
  t.is(overlaps, 0);
  t.is(tokens.length, 12);
  t.deepEqual(
    [...tokens].sort((a, b) => a - b),
    tokens,
  );
});

test('waiters are granted in the order their requests reached the workflow', async (t) => {
  const { acquire } = coordinator();
  const id = env.id('fifo');
  const first = await acquire(id);
  const order: number[] = [];
  const waiters: Promise<void>[] = [];
  for (let i = 0; i < 8; i++) {
    waiters.push(
      acquire(id).then(async (lease) => {
        order.push(i);
        await lease.release();
      }),
    );
    await untilWaiting(id, i + 1);
  }
  await first.release();
  await Promise.all(waiters);
  t.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
});

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
    await untilWaiting(id, i + 1);
  }
  const queriesBeforeHold = queries;
  await sleep(1_500);
  const queriesWhileHeld = queries - queriesBeforeHold;
  const { memo } = await env.client.workflow.getHandle(lockIdPrefix(DEFAULT_ID_PREFIX) + id).describe();
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
  await untilWaiting(id, headSlots(1));
  await first.release();
  await Promise.all(waiters);
  const history = await env.client.workflow.getHandle(lockIdPrefix(DEFAULT_ID_PREFIX) + id).fetchHistory();
  t.false(history.events!.some((event) => event.workflowPropertiesModifiedEventAttributes));
});

test('a semaphore admits at most limit holders at once', async (t) => {
  const { withSemaphore } = coordinator();
  const id = env.id('semaphore');
  let inside = 0;
  let most = 0;
  // Each section holds on until the 3 slots have been held at once (or 10 s have passed), so that reaching the limit is
  // shown even on a loaded machine, where grants can come more than a second apart.
  await Promise.all(
    Array.from({ length: 9 }, () =>
      withSemaphore(id, 3, async () => {
        most = Math.max(most, ++inside);
        const giveUpAt = performance.now() + 10_000;
        while (most < 3 && performance.now() < giveUpAt) await sleep(50);
        await sleep(50);
        inside--;
      }),
    ),
  );
  t.is(most, 3);
});

test('a request whose limit disagrees with the running semaphore is rejected', async (t) => {
  const { acquire } = coordinator();
  const id = env.id('mismatch');
  const lease = await acquire(id, { limit: 2 });
  const error = await t.throwsAsync(acquire(id, { limit: 3 }), { instanceOf: LimitMismatchError });
  t.like(error, { resourceId: id, limit: 3, activeLimit: 2 });
  await lease.release();
});

test('waitTimeout ends the wait on time when no worker answers for the lock', async (t) => {
  const { acquire } = createCoordinator({ client: env.client, taskQueue: `unserved-${env.taskQueue}` });
  const id = env.id('unserved');
  const started = performance.now();
  await t.throwsAsync(acquire(id, { waitTimeout: '500ms' }), { instanceOf: LockTimeoutError });
  const took = performance.now() - started;
  // The withdrawal that follows is a signal, which needs no worker; the wait itself ends at 500 ms.
  t.true(took < 3_000, `gave up after ${took} ms`);
  await env.client.workflow.getHandle(lockIdPrefix(DEFAULT_ID_PREFIX) + id).terminate('test done');
});

test('waitTimeout ends the wait with LockTimeoutError and the request is never granted later', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('timeout');
  const holder = await acquire(id);
  const error = await t.throwsAsync(acquire(id, { waitTimeout: 300 }), { instanceOf: LockTimeoutError });
  t.like(error, { resourceId: id, waitTimeout: 300 });
  await untilWaiting(id, 0);
  t.is(await nextGrantAfter(holder), holder.token + 1, 'the withdrawn request took no grant');
  t.deepEqual((await lockStatus(id)).holders, []);
});

test('an aborted signal ends the wait with its reason and withdraws the request', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('abort');
  const holder = await acquire(id);
  const controller = new AbortController();
  const waiting = acquire(id, { signal: controller.signal });
  await untilWaiting(id, 1);
  const reason = new Error('no longer needed');
  controller.abort(reason);
  t.is(await t.throwsAsync(waiting), reason);
  await untilWaiting(id, 0);
  t.is(await nextGrantAfter(holder), holder.token + 1, 'the withdrawn request took no grant');
  t.deepEqual((await lockStatus(id)).holders, []);
});

test('an already aborted signal fails before anything is sent', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('pre-aborted');
  const reason = new Error('stop');
  t.is(await t.throwsAsync(acquire(id, { signal: AbortSignal.abort(reason) })), reason);
  t.false((await lockStatus(id)).running);
});

test('a holder that stops renewing loses the lease at ttl: its signal aborts and the next waiter is granted', async (t) => {
  const { acquire } = coordinator();
  const id = env.id('expiry');
  const ttl = 1_000;
  // Timed from the request, which comes before the grant: the grant reaches this process later, by as much as a
  // loaded machine makes it, and the ttl runs from the grant.
  const requested = performance.now();
  const lease = await acquire(id, { ttl, autoRenew: false });
  const granted = performance.now();
  const lost = aborted(lease.signal).then(() => performance.now());
  const next = await acquire(id);
  const waited = performance.now() - requested;
  t.true(waited >= ttl - 50, `next holder granted ${waited} ms after the first request`);
  t.true(next.token > lease.token);
  // The holder's own deadline runs from the grant's arrival here, never later than the workflow's: its signal aborts
  // no later than ttl after that (plus this process's timer lateness), and says why.
  const abortedAfter = (await lost) - granted;
  t.true(abortedAfter <= ttl + TIMER_SLACK, `lease.signal aborted ${abortedAfter} ms after the grant arrived`);
  t.true(lease.signal.reason instanceof LeaseLostError);
  t.like(lease.signal.reason, { reason: 'expired', token: lease.token, resourceId: id });
  await next.release();
});

test('an auto-renewing lease outlives its ttl', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('renew');
  // A ttl with room for slow renewals on a loaded CI machine; the lease is renewed several times during the sleep.
  const lease = await acquire(id, { ttl: '9s' });
  await sleep(12_000);
  t.false(lease.signal.aborted, String(lease.signal.reason));
  t.deepEqual(
    (await lockStatus(id)).holders.map((holder) => holder.token),
    [lease.token],
  );
  await lease.release();
});

test('renewing a lease that was re-granted fails with LeaseLostError and leaves the new holder alone', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('stale');
  const stale = await acquire(id, { ttl: '1s', autoRenew: false });
  const current = await acquire(id);
  const error = await t.throwsAsync(stale.renew(), { instanceOf: LeaseLostError });
  t.is(error?.token, stale.token);
  await stale.release();
  await stale.release(); // idempotent
  t.deepEqual(
    (await lockStatus(id)).holders.map((holder) => holder.token),
    [current.token],
  );
  await current.release();
});

test('a release with a forged token has no effect', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('forged');
  const lease = await acquire(id);
  const handle = env.client.workflow.getHandle(lockIdPrefix(DEFAULT_ID_PREFIX) + id);
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
  await untilWaiting(id, 2);
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

test('await using releases the lease', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('await-using');
  {
    await using lease = await acquire(id);
    t.is((await lockStatus(id)).holders.length, 1);
    t.truthy(lease.token);
  }
  t.deepEqual((await lockStatus(id)).holders, []);
});

test('the error fn throws wins over a failed release, which is attached as suppressed', async (t) => {
  const connection = await Connection.connect({ address: env.address });
  const { withLock } = createCoordinator({ client: new Client({ connection }), taskQueue: env.taskQueue });
  const failure = new Error('fn failed');
  const error = await t.throwsAsync(
    withLock(env.id('error-wins'), async () => {
      await connection.close();
      throw failure;
    }),
  );
  t.is(error, failure);
  t.truthy((error as Error & { suppressed?: unknown }).suppressed);
});

test('the error fn throws is rethrown as is and the lock is released', async (t) => {
  const { withLock, lockStatus } = coordinator();
  const id = env.id('throws');
  const failure = new TypeError('bad');
  t.is(await t.throwsAsync(withLock(id, () => Promise.reject(failure))), failure);
  t.deepEqual((await lockStatus(id)).holders, []);
});

test('tokens keep increasing after the workflow exits when idle and a new run starts', async (t) => {
  const { withLock, lockStatus } = coordinator();
  const id = env.id('idle-exit');
  const first = await withLock(id, (lease) => lease.token);
  const handle = env.client.workflow.getHandle(lockIdPrefix(DEFAULT_ID_PREFIX) + id);
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
    const handle = env.client.workflow.getHandle(lockIdPrefix(DEFAULT_ID_PREFIX) + id);
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

test('forceRelease frees the slot held with a token: the holder loses its lease, the next waiter is granted', async (t) => {
  const { acquire, forceRelease, lockStatus } = coordinator();
  const id = env.id('force');
  // A ttl with room for a renewal to get through a busy server (on the cluster, right after a node rejoined, one did
  // not within 3 s, and the lease was lost as expired before the rejection could say revoked).
  const stuck = await acquire(id, { ttl: '6s' });
  const next = acquire(id);
  await untilWaiting(id, 1);
  t.deepEqual(await forceRelease(id, stuck.token + 1), { released: false });
  t.deepEqual(await forceRelease(id, stuck.token, { reason: 'holder stuck in a deploy' }), { released: true });
  const granted = await next;
  t.true(granted.token > stuck.token);
  // The forced-out holder finds out at its next renewal (every ttl/3 = 2 s) and its signal says why.
  await aborted(stuck.signal);
  t.true(stuck.signal.reason instanceof LeaseLostError);
  t.is((stuck.signal.reason as LeaseLostError).reason, 'revoked');
  await stuck.release(); // a stale release leaves the new holder alone
  const status = await lockStatus(id);
  t.deepEqual(
    status.holders.map((holder) => holder.token),
    [granted.token],
  );
  t.is(status.forcedReleases.length, 1);
  t.like(status.forcedReleases[0], { token: stuck.token, reason: 'holder stuck in a deploy' });
  t.true(status.forcedReleases[0]!.at instanceof Date);
  t.deepEqual(await forceRelease(id, stuck.token), { released: false }); // already gone
  await granted.release();
  t.deepEqual(await forceRelease(env.id('force-idle'), 1), { released: false });
});

test('forceRelease rejects bad input before any request is sent', async (t) => {
  const { forceRelease } = coordinator();
  const id = env.id('force-bad');
  for (const token of [0, -1, 1.5, Number.NaN, '7' as unknown as number]) {
    await t.throwsAsync(forceRelease(id, token), { instanceOf: RangeError, message: /`token`/ });
  }
  await t.throwsAsync(forceRelease(id, 1, { reason: 7 as unknown as string }), {
    instanceOf: TypeError,
    message: /`reason`/,
  });
  await t.throwsAsync(forceRelease('', 1), { instanceOf: TypeError, message: /resourceId/ });
});

test('lockStatus reports idle for a resource that was never used', async (t) => {
  const { lockStatus } = coordinator();
  const id = env.id('never');
  t.deepEqual(await lockStatus(id), {
    resourceId: id,
    running: false,
    limit: undefined,
    holders: [],
    waiting: 0,
    forcedReleases: [],
  });
});

test('lockStatus reports holders and waiters of a busy resource', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('status');
  const lease = await acquire(id, { limit: 2 });
  const second = await acquire(id, { limit: 2 });
  const third = acquire(id, { limit: 2 });
  await untilWaiting(id, 1);
  const status = await lockStatus(id);
  t.is(status.running, true);
  t.is(status.limit, 2);
  t.deepEqual(
    status.holders.map((holder) => holder.token),
    [lease.token, second.token],
  );
  t.true(status.holders.every((holder) => holder.expiresAt instanceof Date));
  t.is(status.waiting, 1);
  await lease.release();
  await (await third).release();
  await second.release();
});

test('bad input fails before any request is sent', async (t) => {
  const { acquire, withLock, withSemaphore, lockStatus } = coordinator();
  const id = env.id('bad-input');
  await t.throwsAsync(acquire(''), { instanceOf: TypeError, message: /resourceId/ });
  await t.throwsAsync(acquire(42 as never), { instanceOf: TypeError, message: /resourceId/ });
  await t.throwsAsync(acquire('x'.repeat(1_000)), { instanceOf: RangeError, message: /resourceId/ });
  await t.throwsAsync(acquire(id, { ttl: -5 }), { instanceOf: RangeError, message: /`ttl`.*`-5` \(number\)/ });
  await t.throwsAsync(acquire(id, { ttl: 'soon' as never }), { instanceOf: TypeError, message: /`ttl`/ });
  await t.throwsAsync(acquire(id, { ttl: Number.POSITIVE_INFINITY }), { instanceOf: RangeError, message: /`ttl`/ });
  await t.throwsAsync(acquire(id, { waitTimeout: 0 }), { instanceOf: RangeError, message: /`waitTimeout`/ });
  await t.throwsAsync(acquire(id, { limit: 1.5 }), { instanceOf: RangeError, message: /`limit`/ });
  await t.throwsAsync(acquire(id, { limit: 0 }), { instanceOf: RangeError, message: /`limit`/ });
  await t.throwsAsync(acquire(id, { signal: 'no' as never }), { instanceOf: TypeError, message: /`signal`/ });
  await t.throwsAsync(acquire(id, { tll: '1s' } as never), { instanceOf: TypeError, message: /`tll`/ });
  await t.throwsAsync(withLock(id, 'not a function' as never), { instanceOf: TypeError, message: /`fn`/ });
  await t.throwsAsync(
    withSemaphore(id, -1, () => {}),
    { instanceOf: RangeError, message: /`limit`/ },
  );
  t.false((await lockStatus(id)).running);
});

test('an unreachable server is retried for the wait budget (at least 5 s), then reported as ServerUnavailableError', async (t) => {
  const connection = Connection.lazy({ address: '127.0.0.1:1' });
  const { acquire } = createCoordinator({ client: new Client({ connection }), taskQueue: env.taskQueue });
  const started = performance.now();
  await t.throwsAsync(acquire(env.id('unreachable'), { waitTimeout: '2s' }), { instanceOf: ServerUnavailableError });
  const took = performance.now() - started;
  t.true(took >= 4_500 && took < 15_000, `gave up after ${took} ms`);
});

test('1,000 concurrent waiters on one lock are all granted, one at a time', async (t) => {
  const { withLock, lockStatus } = coordinator();
  const id = env.id('thousand');
  let inside = 0;
  let overlaps = 0;
  const tokens = new Set<number>();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 1_000 }, () =>
      withLock(id, async (lease: Lease) => {
        if (++inside > 1) overlaps++;
        tokens.add(lease.token);
        // Held across a timer, so a second holder granted meanwhile would be counted.
        await sleep(1);
        inside--;
      }),
    ),
  );
  t.log(`1,000 hand-offs in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  t.is(overlaps, 0);
  t.is(tokens.size, 1_000);
  t.is((await lockStatus(id)).waiting, 0);
});
