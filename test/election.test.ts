import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCoordinator, LockTimeoutError, type LeaderState } from '../lib/index.js';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';

// Leader election through the package's entry point only. Across processes, with the leader killed:
// test/election-cross-process.test.ts.

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('election');
});
test.after.always(async () => {
  await env?.teardown();
});

/** Polls `check` until it holds; fails, rather than hangs, if it never does. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error('Timed out');
    await sleep(20);
  }
}

const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });

/** Collects what `observe` yields until `done` says the collection is complete (or 60 s pass). */
function collect(electionId: string, done: (states: LeaderState[]) => boolean) {
  const controller = new AbortController();
  const states: LeaderState[] = [];
  const finished = (async () => {
    const timer = setTimeout(() => controller.abort(), 60_000);
    for await (const state of coordinator().observe(electionId, { signal: controller.signal })) {
      states.push(state);
      if (done(states)) controller.abort();
    }
    clearTimeout(timer);
    return states;
  })();
  return { states, finished };
}

test('candidates lead one after the other, and an observer sees each leader and each vacancy once, in term order', async (t) => {
  const id = env.id('election');
  const observer = collect(id, (states) => states.length >= 4);
  const { campaign, leader } = coordinator();
  t.deepEqual(await leader(id), { leader: undefined, term: undefined });
  const alice = await campaign(id, { value: 'alice' });
  const bobWins = coordinator().campaign(id, { value: 'bob' });
  t.like(await leader(id), { leader: 'alice', term: alice.term });
  await alice.resign();
  const bob = await bobWins;
  t.true(bob.term > alice.term, 'terms increase');
  t.deepEqual(await leader(id), { leader: 'bob', term: bob.term });
  await bob.resign();
  const states = await observer.finished;
  t.deepEqual(states, [
    { leader: undefined, term: undefined },
    { leader: 'alice', term: alice.term },
    { leader: 'bob', term: bob.term },
    { leader: undefined, term: undefined },
  ]);
});

test('an observer that starts while a candidate leads sees it first, then what follows', async (t) => {
  const id = env.id('late-observer');
  const { campaign } = coordinator();
  const first = await campaign(id, { value: 'first' });
  const observer = collect(id, (states) => states.at(-1)?.leader === 'second');
  await until(() => observer.states.length > 0);
  await first.resign();
  const second = await campaign(id, { value: 'second' });
  const states = await observer.finished;
  t.deepEqual(states[0], { leader: 'first', term: first.term });
  t.deepEqual(states.at(-1), { leader: 'second', term: second.term });
  // Between the two nobody led for a moment: the observer sees that vacancy, unless the second came in the same task.
  t.deepEqual(states.slice(1, -1), states.length === 3 ? [{ leader: undefined, term: undefined }] : []);
  await second.resign();
});

test('withLeadership runs fn while leading, returns what it returns, and resigns', async (t) => {
  const id = env.id('with-leadership');
  const { withLeadership, leader } = coordinator();
  const result = await withLeadership(
    id,
    async (leadership) => {
      t.like(await leader(id), { leader: 'me', term: leadership.term });
      t.false(leadership.signal.aborted);
      return 42;
    },
    { value: 'me' },
  );
  t.is(result, 42);
  await until(async () => (await leader(id)).leader === undefined);
});

test('an election and a lock of the same name are separate resources', async (t) => {
  const id = env.id('same-name');
  const { acquire, campaign } = coordinator();
  const lease = await acquire(id);
  const leadership = await campaign(id, { waitTimeout: '10s' });
  t.truthy(leadership.term);
  await Promise.all([lease.release(), leadership.resign()]);
});

test('waitTimeout ends a campaign with LockTimeoutError and withdraws the candidacy', async (t) => {
  const id = env.id('campaign-timeout');
  const { campaign, leader } = coordinator();
  const holder = await campaign(id, { value: 'holder' });
  await t.throwsAsync(coordinator().campaign(id, { value: 'late', waitTimeout: 500 }), {
    instanceOf: LockTimeoutError,
  });
  await holder.resign();
  await until(async () => (await leader(id)).leader === undefined);
  await sleep(500);
  t.deepEqual(await leader(id), { leader: undefined, term: undefined }, 'the withdrawn candidate never leads');
});

test('bad input fails before any request is sent', async (t) => {
  const { campaign, withLeadership, observe, leader } = coordinator();
  const id = env.id('bad-input');
  await t.throwsAsync(campaign(''), { instanceOf: TypeError, message: /electionId|resourceId/ });
  await t.throwsAsync(campaign(id, { value: 42 as never }), { instanceOf: TypeError, message: /value/ });
  await t.throwsAsync(campaign(id, { limit: 2 } as never), { instanceOf: TypeError, message: /limit/ });
  await t.throwsAsync(campaign(id, { ttl: -1 }), { instanceOf: RangeError, message: /ttl/ });
  await t.throwsAsync(withLeadership(id, 'fn' as never), { instanceOf: TypeError, message: /fn/ });
  t.throws(() => observe(''), { instanceOf: TypeError });
  t.throws(() => observe(id, { signal: 'no' as never }), { instanceOf: TypeError, message: /signal/ });
  await t.throwsAsync(leader(''), { instanceOf: TypeError });
});
