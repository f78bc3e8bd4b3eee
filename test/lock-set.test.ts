import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCoordinator, LeaseLostError, LockTimeoutError, type LeaseSet } from '../lib/index.js';
import { untilWaiting } from './_helpers/locks.js';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';

// withLocks and acquireAll, through the package's entry point only. Across processes against a fenced table:
// test/cross-process.test.ts.

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('lock-set');
});
test.after.always(async () => {
  await env?.teardown();
});

const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });

test('withLocks holds every lock of the set while fn runs, hands fn the leases by ID and releases them all', async (t) => {
  const [a, b, c] = ['a', 'b', 'c'].map((label) => env.id(label)) as [string, string, string];
  const { withLocks, lockStatus } = coordinator();
  const result = await withLocks([c, a, b, a], async (leases: LeaseSet) => {
    t.deepEqual([...leases.keys()], [a, b, c].sort(), 'sorted, duplicates dropped');
    for (const [resourceId, lease] of leases) {
      t.is(lease.resourceId, resourceId);
      t.like(await lockStatus(resourceId), { holders: [{ token: lease.token }] });
    }
    t.false(leases.signal.aborted);
    return 'done';
  });
  t.is(result, 'done');
  for (const resourceId of [a, b, c]) t.like(await lockStatus(resourceId), { holders: [], waiting: 0 });
});

test('calls whose sets overlap in opposite orders never deadlock, and never hold a lock together', async (t) => {
  const ids = ['x', 'y', 'z'].map((label) => env.id(label));
  const holding = new Map<string, string>();
  const sets = [ids, [...ids].reverse(), [ids[2]!, ids[0]!], [ids[1]!, ids[0]!]];
  await Promise.all(
    sets.map(async (set, caller) => {
      const { withLocks } = coordinator();
      for (let round = 0; round < 3; round++) {
        await withLocks(set, async (leases) => {
          for (const resourceId of leases.keys()) {
            t.is(holding.get(resourceId), undefined, `${resourceId} held by two callers`);
            holding.set(resourceId, `caller ${caller}`);
          }
          await sleep(20);
          for (const resourceId of leases.keys()) holding.delete(resourceId);
        });
      }
    }),
  );
  t.is(holding.size, 0);
});

test('waitTimeout covers the whole set: a lock that stays busy times the call out and the locks taken are released', async (t) => {
  const [free, busy] = [env.id('free'), env.id('busy')].sort() as [string, string];
  const { acquire, acquireAll, lockStatus } = coordinator();
  const holder = await acquire(busy);
  const started = performance.now();
  const error = await t.throwsAsync(acquireAll([busy, free], { waitTimeout: 800 }), { instanceOf: LockTimeoutError });
  t.like(error, { resourceId: busy, waitTimeout: 800 });
  t.true(performance.now() - started < 5_000, 'it did not wait a whole timeout per lock');
  t.like(await lockStatus(free), { holders: [], waiting: 0 }, 'the lock taken first was released');
  t.like(await lockStatus(busy), { holders: [{ token: holder.token }], waiting: 0 }, 'the request was withdrawn');
  await holder.release();
});

test('an abort while waiting for a later lock releases the locks taken and withdraws the request', async (t) => {
  const [first, second] = [env.id('first'), env.id('second')].sort() as [string, string];
  const { acquire, acquireAll, lockStatus } = coordinator();
  const holder = await acquire(second);
  const controller = new AbortController();
  const waiting = acquireAll([first, second], { signal: controller.signal });
  await untilWaiting(coordinator(), second, 1);
  const reason = new Error('no longer needed');
  controller.abort(reason);
  await t.throwsAsync(waiting, { is: reason });
  t.like(await lockStatus(first), { holders: [], waiting: 0 });
  await untilWaiting(coordinator(), second, 0);
  await holder.release();
});

test('a lease set aborts its signal when any of its leases is lost, and releases the rest', async (t) => {
  const [kept, lostId] = [env.id('kept'), env.id('lost')];
  const { acquireAll, forceRelease, lockStatus } = coordinator();
  await using leases = await acquireAll([kept, lostId]);
  const lost = leases.get(lostId)!;
  await forceRelease(lost.resourceId, lost.token, { reason: 'test' });
  await t.throwsAsync(lost.renew(), { instanceOf: LeaseLostError });
  t.true(leases.signal.aborted);
  t.like(leases.signal.reason, { name: 'LeaseLostError', resourceId: lost.resourceId });
  await leases.release();
  for (const resourceId of [kept, lostId]) t.like(await lockStatus(resourceId), { holders: [] });
});

test('bad input fails before any request is sent', async (t) => {
  const { withLocks, acquireAll, lockStatus } = coordinator();
  const id = env.id('bad-input');
  await t.throwsAsync(acquireAll([]), { instanceOf: TypeError, message: /resourceIds/ });
  await t.throwsAsync(acquireAll('a' as unknown as string[]), { instanceOf: TypeError, message: /resourceIds/ });
  await t.throwsAsync(acquireAll([id, 42 as unknown as string]), { instanceOf: TypeError, message: /resourceId/ });
  await t.throwsAsync(acquireAll([id], { limit: 2 } as never), { instanceOf: TypeError, message: /limit/ });
  await t.throwsAsync(acquireAll([id], { waitTimeout: -1 }), { instanceOf: RangeError, message: /waitTimeout/ });
  await t.throwsAsync(withLocks([id], 'fn' as never), { instanceOf: TypeError, message: /fn/ });
  t.like(await lockStatus(id), { running: false });
});
