import test from 'ava';
import fc from 'fast-check';
import { LockCore, type LockSnapshot } from '../lib/workflows/lock-core.js';

const options = { claimWindow: 5_000, dedupWindow: 50 };
const TTL = 1_000;

type Event =
  | { kind: 'acquire'; id: number; fromWorkflow: boolean }
  | { kind: 'release'; id: number; staleToken: boolean }
  | { kind: 'renew'; id: number }
  | { kind: 'withdraw'; id: number }
  | { kind: 'forceRelease'; id: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'continueAsNew' };

const event: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constant('acquire' as const), id: fc.nat(30), fromWorkflow: fc.boolean() }),
  fc.record({ kind: fc.constant('release' as const), id: fc.nat(30), staleToken: fc.boolean() }),
  fc.record({ kind: fc.constant('renew' as const), id: fc.nat(30) }),
  fc.record({ kind: fc.constant('withdraw' as const), id: fc.nat(30) }),
  fc.record({ kind: fc.constant('forceRelease' as const), id: fc.nat(30) }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 2_000 }) }),
  fc.record({ kind: fc.constant('continueAsNew' as const) }),
);

/** Replays events against the core, checking the invariants after each one; returns the grant order. */
function run(limit: number, events: Event[]) {
  let core = new LockCore(undefined, 1, options);
  let now = 0;
  const queued: string[] = []; // what a FIFO queue should hold, in order
  const grantOrder: string[] = [];
  const tokens = new Map<string, number>();
  let lastToken = 0;
  const fromWorkflow = new Set<string>(); // requests whose grant must be signalled to their workflow
  const observe = () => {
    const status = core.status();
    // Exactly the new grants of workflow requests are to be signalled, once each, with their token, oldest first.
    const expected: string[] = [];
    const notifications = core.takeNotifications();
    if (status.holders.length > limit) throw new Error(`more than ${limit} holders`);
    // New grants must be the oldest waiters, with strictly increasing tokens.
    for (const id of [...queued]) {
      const state = core.requestState(id, now);
      if (state.state === 'granted') {
        if (queued[0] !== id) throw new Error(`${id} was granted before ${queued[0]}`);
        queued.shift();
        if (state.token <= lastToken) throw new Error(`token ${state.token} after ${lastToken}`);
        lastToken = state.token;
        tokens.set(id, state.token);
        grantOrder.push(id);
        if (fromWorkflow.has(id)) expected.push(`${id}:${state.token}`);
      } else if (state.state !== 'waiting') {
        throw new Error(`waiting request ${id} was lost (${state.state})`);
      }
    }
    if (status.waiting !== queued.length) throw new Error(`waiting ${status.waiting}, expected ${queued.length}`);
    // Tickets number the waiters in queue order, and the ticket at a position is the one its waiter is told.
    let lastTicket = -Infinity;
    queued.forEach((id, position) => {
      const state = core.requestState(id, now);
      if (state.state !== 'waiting' || state.position !== position || state.ticket !== core.ticketAt(position))
        throw new Error(`${id} is not told its place in the queue`);
      if (!(state.ticket! > lastTicket)) throw new Error(`ticket ${state.ticket} after ${lastTicket}`);
      lastTicket = state.ticket!;
    });
    const signalled = notifications.map(({ requestId, notify, answer }) => {
      if (notify.workflowId !== `wf-${requestId}` || answer.state !== 'granted') throw new Error('bad notification');
      return `${requestId}:${answer.token}`;
    });
    if (signalled.join() !== expected.join())
      throw new Error(`signalled ${signalled.join()}, granted ${expected.join()}`);
  };
  const seen = new Set<string>();
  for (const e of events) {
    switch (e.kind) {
      case 'acquire': {
        const id = `r${e.id}`;
        const notify = e.fromWorkflow ? { workflowId: `wf-${id}` } : undefined;
        core.acquire({ requestId: id, ttl: TTL, limit, ...(notify ? { notify } : {}) }, now);
        // Only a never-seen request joins the queue: duplicates are ignored.
        if (!seen.has(id)) {
          queued.push(id);
          if (e.fromWorkflow) fromWorkflow.add(id);
        }
        seen.add(id);
        break;
      }
      case 'release': {
        const id = `r${e.id}`;
        const token = tokens.get(id);
        if (token !== undefined) core.release(id, e.staleToken ? token - 1 : token, now);
        break;
      }
      case 'renew': {
        const id = `r${e.id}`;
        const token = tokens.get(id);
        if (token !== undefined) core.renew(id, token, now);
        break;
      }
      case 'withdraw': {
        const id = `r${e.id}`;
        core.withdraw(id, now);
        const index = queued.indexOf(id);
        if (index >= 0) queued.splice(index, 1);
        seen.add(id);
        break;
      }
      case 'forceRelease': {
        // An operator names only the token; the slot frees exactly when that token is still held.
        const token = tokens.get(`r${e.id}`);
        if (token === undefined) break;
        const held = core.status().holders.some((holder) => holder.token === token);
        if (core.forceRelease(token, `case ${e.id}`, now) !== held)
          throw new Error(`forceRelease(${token}) misreported`);
        if (held && core.status().forcedReleases.at(-1)?.token !== token)
          throw new Error('forced release not recorded');
        break;
      }
      case 'tick':
        now += e.ms;
        core.expire(now);
        break;
      case 'continueAsNew': {
        const snapshot: LockSnapshot = JSON.parse(JSON.stringify(core.snapshot()));
        core = new LockCore(snapshot, 1, options);
        break;
      }
    }
    observe();
  }
  return { core, grantOrder };
}

test('random request sequences keep at most limit holders, FIFO grants, increasing tokens and no lost request, and signal each workflow grant once', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.array(event, { maxLength: 200 }), (limit, events) => {
      run(limit, events);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('a grant that is not claimed lapses after the claim window and the next waiter is granted', (t) => {
  const core = new LockCore(undefined, 1, options);
  core.acquire({ requestId: 'dead', ttl: 30_000, limit: 1 }, 0);
  core.acquire({ requestId: 'next', ttl: 30_000, limit: 1 }, 0);
  core.expire(4_999);
  t.is(core.requestState('dead', 4_999).state, 'granted');
  core.expire(5_000);
  t.is(core.requestState('dead', 5_000).state, 'unknown');
  t.like(core.requestState('next', 5_000), { state: 'granted', token: 2 });
});

test('a claimed grant lasts its ttl from the last renewal', (t) => {
  const core = new LockCore(undefined, 1, options);
  core.acquire({ requestId: 'a', ttl: 30_000, limit: 1 }, 0);
  t.is(core.renew('a', 1, 1_000), 31_000);
  core.expire(30_999);
  t.like(core.requestState('a', 30_999), { state: 'granted', claimed: true });
  core.expire(31_000);
  t.is(core.requestState('a', 31_000).state, 'unknown');
});

test('a release with a stale token or another request id leaves the holder alone', (t) => {
  const core = new LockCore(undefined, 10, options);
  core.acquire({ requestId: 'a', ttl: 1_000, limit: 1 }, 0);
  core.release('a', 9, 0);
  core.release('b', 10, 0);
  t.like(core.requestState('a', 0), { state: 'granted', token: 10 });
});

test('a request whose limit differs from a busy resource is rejected, and accepted once it is idle', (t) => {
  const core = new LockCore(undefined, 1, options);
  core.acquire({ requestId: 'a', ttl: 1_000, limit: 2 }, 0);
  core.acquire({ requestId: 'b', ttl: 1_000, limit: 3 }, 0);
  t.deepEqual(core.requestState('b', 0), { state: 'rejected', activeLimit: 2 });
  core.withdraw('a', 0);
  core.acquire({ requestId: 'c', ttl: 1_000, limit: 3 }, 0);
  t.is(core.status().limit, 3);
});

test('a withdrawal that arrives before its acquire makes the acquire a no-op', (t) => {
  const core = new LockCore(undefined, 1, options);
  core.withdraw('a', 0);
  core.acquire({ requestId: 'a', ttl: 1_000, limit: 1 }, 0);
  t.true(core.isIdle());
});

test('the token floor only ever raises the counter', (t) => {
  const core = new LockCore(undefined, 500, options);
  core.acquire({ requestId: 'a', ttl: 1_000, limit: 1 }, 0);
  t.like(core.requestState('a', 0), { token: 500 });
  const lower = new LockCore(core.snapshot(), 200, options);
  lower.acquire({ requestId: 'b', ttl: 1_000, limit: 1 }, 0);
  lower.release('a', 500, 0);
  t.like(lower.requestState('b', 0), { token: 501 });
  const higher = new LockCore(lower.snapshot(), 1_000, options);
  higher.acquire({ requestId: 'c', ttl: 1_000, limit: 1 }, 0);
  higher.release('b', 501, 0);
  t.like(higher.requestState('c', 0), { token: 1_000 });
});

test('tickets keep increasing across a new run, whose floor raises them like tokens', (t) => {
  const core = new LockCore(undefined, 100, options);
  core.acquire({ requestId: 'holder', ttl: 1_000, limit: 1 }, 0);
  core.acquire({ requestId: 'a', ttl: 1_000, limit: 1 }, 0);
  const next = new LockCore(core.snapshot(), 1_000, options);
  next.acquire({ requestId: 'b', ttl: 1_000, limit: 1 }, 0);
  t.like(next.requestState('a', 0), { state: 'waiting', position: 0, ticket: 101 });
  t.like(next.requestState('b', 0), { state: 'waiting', position: 1, ticket: 1_000 });
  t.is(next.ticketAt(1), 1_000);
  t.is(next.ticketAt(2), undefined);
});

test('a request from a workflow is answered with its grant once, when it is granted', (t) => {
  const core = new LockCore(undefined, 1, options);
  const notify = { workflowId: 'requester' };
  core.acquire({ requestId: 'client', ttl: 30_000, limit: 1 }, 0);
  core.acquire({ requestId: 'workflow', ttl: 30_000, limit: 1, notify }, 0);
  core.acquire({ requestId: 'workflow', ttl: 30_000, limit: 1, notify }, 0);
  t.deepEqual(core.takeNotifications(), [], 'a client is never signalled; a waiting workflow not yet');
  core.release('client', 1, 100);
  t.deepEqual(core.takeNotifications(), [
    {
      requestId: 'workflow',
      notify,
      answer: { state: 'granted', token: 2, expiresIn: 5_000, expiresAt: 5_100, claimed: false },
    },
  ]);
  t.deepEqual(core.takeNotifications(), [], 'taken once');
});

test('a request from a workflow whose limit disagrees is answered with the rejection', (t) => {
  const core = new LockCore(undefined, 1, options);
  const notify = { workflowId: 'requester' };
  core.acquire({ requestId: 'a', ttl: 1_000, limit: 2 }, 0);
  core.acquire({ requestId: 'b', ttl: 1_000, limit: 1, notify }, 0);
  t.deepEqual(core.takeNotifications(), [{ requestId: 'b', notify, answer: { state: 'rejected', activeLimit: 2 } }]);
});

test('a waiting workflow request keeps its requester across continue-as-new', (t) => {
  const core = new LockCore(undefined, 1, options);
  const notify = { workflowId: 'requester' };
  core.acquire({ requestId: 'a', ttl: 1_000, limit: 1 }, 0);
  core.acquire({ requestId: 'b', ttl: 1_000, limit: 1, notify }, 0);
  const next = new LockCore(JSON.parse(JSON.stringify(core.snapshot())) as LockSnapshot, 1, options);
  next.release('a', 1, 10);
  t.like(next.takeNotifications(), [{ requestId: 'b', notify, answer: { state: 'granted', token: 2 } }]);
});

test('tryAcquire grants a free resource at once and refuses a busy one, whose refused request never joins the queue', (t) => {
  const core = new LockCore(undefined, 1, options);
  t.like(core.tryAcquire({ requestId: 'a', ttl: 1_000, limit: 2 }, 0), { state: 'granted', token: 1 });
  t.like(core.tryAcquire({ requestId: 'a', ttl: 1_000, limit: 2 }, 10), { state: 'granted', token: 1 }, 'a duplicate');
  t.like(core.tryAcquire({ requestId: 'b', ttl: 1_000, limit: 2 }, 0), { state: 'granted', token: 2 }, 'a second slot');
  t.deepEqual(core.tryAcquire({ requestId: 'c', ttl: 1_000, limit: 2 }, 0), { state: 'unknown' });
  t.deepEqual(core.tryAcquire({ requestId: 'd', ttl: 1_000, limit: 1 }, 0), { state: 'rejected', activeLimit: 2 });
  core.release('a', 1, 20);
  t.deepEqual(core.requestState('c', 20), { state: 'unknown' }, 'never granted later');
  t.deepEqual(
    core.tryAcquire({ requestId: 'c', ttl: 1_000, limit: 2 }, 20),
    { state: 'unknown' },
    'a refused duplicate',
  );
  t.is(core.waiting(), 0);
  t.like(core.tryAcquire({ requestId: 'e', ttl: 1_000, limit: 2 }, 20), { state: 'granted', token: 3 });
});

test('tryAcquire is refused while requests wait, even for a slot about to free', (t) => {
  const core = new LockCore(undefined, 1, options);
  core.acquire({ requestId: 'holder', ttl: 1_000, limit: 1 }, 0);
  core.acquire({ requestId: 'waiter', ttl: 1_000, limit: 1 }, 0);
  t.deepEqual(core.tryAcquire({ requestId: 'try', ttl: 1_000, limit: 1 }, 0), { state: 'unknown' });
  core.release('holder', 1, 0);
  t.like(core.requestState('waiter', 0), { state: 'granted' }, 'the queue keeps its order');
});

test('an election logs each new leader and each vacancy once, numbered in order across continue-as-new and new runs', (t) => {
  const core = new LockCore(undefined, 1, { ...options, election: true });
  t.deepEqual(core.leadershipView(0), { changes: [], current: { leader: undefined, term: undefined } });
  core.acquire({ requestId: 'a', ttl: 1_000, limit: 1, value: 'alice' }, 0);
  core.acquire({ requestId: 'b', ttl: 1_000, limit: 1, value: 'bob' }, 0);
  core.renew('a', 1, 10);
  core.release('a', 1, 20);
  core.expire(20 + 5_000);
  const { changes, current } = core.leadershipView(0);
  t.deepEqual(
    changes.map(({ leader, term }) => [leader, term]),
    [
      ['alice', 1],
      ['bob', 2],
      [undefined, undefined],
    ],
    'a renewal is no change; the unclaimed grant lapsed, leaving nobody',
  );
  t.deepEqual(current, { leader: undefined, term: undefined });
  t.deepEqual(
    changes.map(({ seq }) => seq),
    [1, 2, 3],
  );
  t.deepEqual(core.leadershipView(2).changes.length, 1, 'only the changes after the one seen last');
  const next = new LockCore(JSON.parse(JSON.stringify(core.snapshot())) as LockSnapshot, 1, options);
  next.acquire({ requestId: 'c', ttl: 1_000, limit: 1, value: 'carol' }, 30_000);
  t.deepEqual(next.leadershipView(3).changes, [{ seq: 4, leader: 'carol', term: 3 }], 'the snapshot keeps the log');
  const later = new LockCore(undefined, 1_000, { ...options, election: true });
  later.acquire({ requestId: 'd', ttl: 1_000, limit: 1, value: 'dave' }, 0);
  t.like(later.leadershipView(0).changes, [{ seq: 1_000, leader: 'dave', term: 1_000 }], 'a new run numbers on');
});

test('a lock keeps no leader changes', (t) => {
  const core = new LockCore(undefined, 1, options);
  core.acquire({ requestId: 'a', ttl: 1_000, limit: 1 }, 0);
  t.deepEqual(core.leadershipView(0).changes, []);
  t.false('changes' in core.snapshot());
});

test('a read-write lock grants consecutive readers together, a writer alone, and readers behind a writer after it', (t) => {
  const core = new LockCore(undefined, 1, options);
  const request = (requestId: string, mode: 'read' | 'write') => ({ requestId, ttl: 1_000, limit: 0, mode });
  core.acquire(request('r1', 'read'), 0);
  core.acquire(request('r2', 'read'), 0);
  core.acquire(request('w1', 'write'), 0);
  core.acquire(request('r3', 'read'), 0);
  const states = () => ['r1', 'r2', 'w1', 'r3'].map((id) => core.requestState(id, 0).state);
  t.deepEqual(states(), ['granted', 'granted', 'waiting', 'waiting'], 'the reader behind the writer does not overtake');
  t.deepEqual(core.tryAcquire(request('try-read', 'read'), 0), { state: 'unknown' }, 'nor does a try');
  core.release('r1', 1, 0);
  t.deepEqual(states(), ['unknown', 'granted', 'waiting', 'waiting']);
  core.release('r2', 2, 0);
  t.deepEqual(states(), ['unknown', 'unknown', 'granted', 'waiting'], 'the writer holds alone');
  t.like(core.status(), { holders: [{ token: 3, mode: 'write' }] });
  core.release('w1', 3, 0);
  t.like(core.requestState('r3', 0), { state: 'granted', token: 4 }, 'tokens increase across modes');
});

test('a read-write request on a busy lock, and a lock request on a busy read-write lock, are rejected', (t) => {
  const lock = new LockCore(undefined, 1, options);
  lock.acquire({ requestId: 'holder', ttl: 1_000, limit: 1 }, 0);
  lock.acquire({ requestId: 'reader', ttl: 1_000, limit: 0, mode: 'read' }, 0);
  t.deepEqual(lock.requestState('reader', 0), { state: 'rejected', activeLimit: 1 });
  const readWrite = new LockCore(undefined, 1, options);
  readWrite.acquire({ requestId: 'writer', ttl: 1_000, limit: 0, mode: 'write' }, 0);
  readWrite.acquire({ requestId: 'plain', ttl: 1_000, limit: 1 }, 0);
  t.deepEqual(readWrite.requestState('plain', 0), { state: 'rejected', activeLimit: 0 });
});
