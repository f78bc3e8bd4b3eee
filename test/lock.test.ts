import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import {
  createCoordinator,
  LeaseLostError,
  LimitMismatchError,
  LockTimeoutError,
  ServerUnavailableError,
  type Lease,
} from '../lib/index.js';
import { lockContract, type Section, type SectionEvent } from './_helpers/lock-contract.js';
import { untilWaiting, nextGrantAfter } from './_helpers/locks.js';
import { aborted, startTestEnv, type TestEnv } from './_helpers/temporal.js';

// The public contract of the client: it imports nothing but the package's entry points (and test helpers). How the
// client and the lock workflow talk is tested in test/lock-protocol.test.ts.

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('lock');
});
test.after.always(async () => {
  await env?.teardown();
});

const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });
/** How late a timer of this process may fire while the 1,000-waiter test shares its event loop. */
const TIMER_SLACK = 1_000;

// ---- What the client's withLock promises as the workflow side's does (test/_helpers/lock-contract.ts) ----

/** Every enter and exit of the contract's sections, in the order they happened. */
const sectionEvents: (SectionEvent & { readonly resourceId: string })[] = [];
/** The error each failing section threw, to check that withLock rethrows that very error. */
const sectionErrors = new WeakMap<Section, Error>();

lockContract({
  requesters: 'coordinators',
  lockTimeout: 'LockTimeoutError',
  coordinator,
  id: (label) => env.id(label),
  withLock(resourceId, section, options = {}) {
    // A coordinator per requester: separate coordinators stand for separate processes, sharing nothing but the server.
    return coordinator().withLock(
      resourceId,
      async (lease) => {
        sectionEvents.push({ resourceId, kind: 'enter', who: section.who, token: lease.token });
        await sleep(section.hold);
        sectionEvents.push({ resourceId, kind: 'exit', who: section.who, token: lease.token });
        if (section.fail) {
          const error = new TypeError(`${section.who} failed`);
          sectionErrors.set(section, error);
          throw error;
        }
        return lease.token;
      },
      options,
    );
  },
  sections: (resourceId) => sectionEvents.filter((event) => event.resourceId === resourceId),
  assertLockTimeout(t, error, expected) {
    t.true(error instanceof LockTimeoutError, String(error));
    t.like(error, expected);
  },
  assertLimitMismatch(t, error, expected) {
    t.true(error instanceof LimitMismatchError, String(error));
    t.like(error, expected);
  },
  assertSectionError(t, error, section) {
    t.is(error, sectionErrors.get(section));
  },
});

// ---- The client alone ----

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

test('an aborted signal ends the wait with its reason and withdraws the request', async (t) => {
  const { acquire, lockStatus } = coordinator();
  const id = env.id('abort');
  const holder = await acquire(id);
  const controller = new AbortController();
  const waiting = acquire(id, { signal: controller.signal });
  await untilWaiting(coordinator(), id, 1);
  const reason = new Error('no longer needed');
  controller.abort(reason);
  t.is(await t.throwsAsync(waiting), reason);
  await untilWaiting(coordinator(), id, 0);
  t.is(await nextGrantAfter(coordinator(), holder), holder.token + 1, 'the withdrawn request took no grant');
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

test('forceRelease frees the slot held with a token: the holder loses its lease, the next waiter is granted', async (t) => {
  const { acquire, forceRelease, lockStatus } = coordinator();
  const id = env.id('force');
  // A ttl with room for a renewal to get through a busy server (on the cluster, right after a node rejoined, one did
  // not within 3 s, and the lease was lost as expired before the rejection could say revoked).
  const stuck = await acquire(id, { ttl: '6s' });
  const next = acquire(id);
  await untilWaiting(coordinator(), id, 1);
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
  await untilWaiting(coordinator(), id, 1);
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

test('a waitTimeout of a fractional number of milliseconds times out like any other', async (t) => {
  const id = env.id('fractional-timeout');
  const { acquire } = coordinator();
  const holder = await acquire(id);
  const error = await t.throwsAsync(acquire(id, { waitTimeout: 300.5 }), { instanceOf: LockTimeoutError });
  t.like(error, { resourceId: id, waitTimeout: 300.5 });
  await holder.release();
});

type Interceptor = NonNullable<ConnectionOptions['interceptors']>[number];

/** A coordinator whose connection counts the calls it makes to the server, by method name. */
async function countingCoordinator() {
  const calls: string[] = [];
  const connection = await Connection.connect({
    address: env.address,
    interceptors: [
      (options, nextCall) => {
        calls.push(options.method_definition.path.split('/').pop()!);
        // The next call intercepts as it is (grpc-js types it more narrowly than what it returns).
        return nextCall(options) as ReturnType<Interceptor>;
      },
    ],
  });
  const client = new Client({ connection, namespace: env.namespace });
  return {
    calls,
    coordinator: createCoordinator({ client, taskQueue: env.taskQueue }),
    close: () => connection.close(),
  };
}

test('tryAcquire takes a free resource in one round trip, idle or running, and returns undefined at once when it is not free', async (t) => {
  const id = env.id('try');
  const { calls, coordinator: counted, close } = await countingCoordinator();
  t.teardown(close);
  const { acquire, lockStatus } = coordinator();
  calls.length = 0;
  const first = await counted.tryAcquire(id);
  t.deepEqual(calls, ['ExecuteMultiOperation'], 'one update-with-start for a resource with no workflow');
  t.truthy(first);
  t.is(await counted.tryAcquire(id), undefined, 'held');
  const waiter = acquire(id);
  await untilWaiting(coordinator(), id, 1);
  await first!.release();
  const second = await waiter;
  t.is(await counted.tryAcquire(id), undefined, 'held again');
  t.like(await lockStatus(id), { holders: [{ token: second.token }], waiting: 0 }, 'a refused try never queues');
  await second.release();
  await untilWaiting(coordinator(), id, 0);
  calls.length = 0;
  const third = await counted.tryAcquire(id);
  t.deepEqual(calls, ['ExecuteMultiOperation'], 'one round trip to the running, lingering workflow too');
  t.true(third!.token > second.token);
  await third!.release();
});

test('tryAcquire with a limit that disagrees with the running semaphore is rejected; bad input fails before any request', async (t) => {
  const id = env.id('try-limit');
  const { acquire, tryAcquire, lockStatus } = coordinator();
  const holder = await acquire(id, { limit: 2 });
  await t.throwsAsync(tryAcquire(id, { limit: 3 }), { instanceOf: LimitMismatchError });
  const second = await tryAcquire(id, { limit: 2 });
  t.truthy(second, 'a second slot is free');
  await Promise.all([holder.release(), second!.release()]);
  const fresh = env.id('try-bad-input');
  await t.throwsAsync(tryAcquire(fresh, { waitTimeout: '1s' } as never), {
    instanceOf: TypeError,
    message: /waitTimeout/,
  });
  await t.throwsAsync(tryAcquire(fresh, { limit: 0 }), { instanceOf: RangeError, message: /limit/ });
  await t.throwsAsync(tryAcquire(''), { instanceOf: TypeError, message: /resourceId/ });
  t.like(await lockStatus(fresh), { running: false });
});
