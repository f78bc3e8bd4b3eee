import test, { type ExecutionContext } from 'ava';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { createCoordinator } from '../lib/index.js';
import { failureTypes } from '../lib/errors.js';
import { electionIdPrefix } from '../lib/ids.js';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { lockStatusQuery } from '../lib/workflows/definitions.js';
import { assertExclusive, lockContract } from './_helpers/lock-contract.js';
import { lockWorkflowId } from './_helpers/lock-ids.js';
import { until, untilWaiting as untilWaitingOn } from './_helpers/locks.js';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';
import type {
  enqueueingWorkflow,
  EnqueueingInput,
  LockingInput,
  lockingSetWorkflow,
  LockingSetInput,
  lockingWorkflow,
  SectionEvent,
  tryLockingWorkflow,
  leadingWorkflow,
  readWriteWorkflow,
} from './_helpers/workflows.js';

const electionWorkflowPrefix = electionIdPrefix(DEFAULT_ID_PREFIX);

// ---- Fixtures: one worker hosting the coordination workflows and the test workflows, bundled together ----

/** Every critical section's enter and exit, workflow and client alike, in the order they happened. */
const events: (SectionEvent & { resourceId: string })[] = [];
const notes: { key: string; label: string }[] = [];
let bundle: { code: string };
let env: TestEnv;

test.before(async () => {
  bundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('_helpers/workflows.ts', import.meta.url)),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never,
  });
  env = await startTestEnv('workflow-lock', {
    workflowBundle: bundle,
    activities: {
      // The resource is not part of the event: the workflow ID says which test it belongs to.
      async record(event: SectionEvent) {
        const workflowId = Context.current().info.workflowExecution?.workflowId ?? '';
        events.push({ ...event, resourceId: workflowId.split('|')[0]! });
      },
    },
    jobs: {
      async note(key: string, label: string) {
        notes.push({ key, label });
        await sleep(20);
      },
    },
  });
});
test.after.always(async () => {
  await env?.teardown();
});

const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });

/** Starts a workflow that holds `resourceId` for `hold` ms; its ID starts with the resource ID, for `record`. */
function startLocking(resourceId: string, who: string, input: Partial<LockingInput> = {}) {
  return env.client.workflow.start<typeof lockingWorkflow>('lockingWorkflow', {
    workflowId: `${resourceId}|${who}`,
    taskQueue: env.taskQueue,
    args: [{ resourceId, who, hold: 50, taskQueue: env.taskQueue, ...input }],
  });
}

/** Starts a workflow that holds every lock of `resourceIds`; its ID starts with `label`, for `record`. */
function startLockingSet(label: string, who: string, input: Omit<LockingSetInput, 'who' | 'taskQueue' | 'hold'>) {
  return env.client.workflow.start<typeof lockingSetWorkflow>('lockingSetWorkflow', {
    workflowId: `${label}|${who}`,
    taskQueue: env.taskQueue,
    args: [{ who, hold: 50, taskQueue: env.taskQueue, ...input }],
  });
}

/** Whether `count` candidates wait in the election, read from its workflow as an operator would. */
async function waitingCandidates(electionId: string, count: number): Promise<boolean> {
  const handle = env.client.workflow.getHandle(`${electionWorkflowPrefix}${electionId}`);
  return (await handle.query(lockStatusQuery)).waiting === count;
}

/** A client requester that records its section like the workflows do. */
function clientLocking(resourceId: string, who: string, hold = 50): Promise<number> {
  return coordinator().withLock(resourceId, async (lease) => {
    events.push({ kind: 'enter', who, token: lease.token, resourceId });
    await sleep(hold);
    events.push({ kind: 'exit', who, token: lease.token, resourceId });
    return lease.token;
  });
}

function sectionsOf(resourceId: string) {
  return events.filter((event) => event.resourceId === resourceId);
}

const untilWaiting = (resourceId: string, count: number) => untilWaitingOn(coordinator(), resourceId, count);

async function workflowStatus(workflowId: string): Promise<string> {
  try {
    return (await env.client.workflow.getHandle(workflowId).describe()).status.name;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return 'NOT_FOUND';
    throw error;
  }
}

/** The signal names in a workflow's history. */
async function signalsReceived(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((event) => {
    const name = event.workflowExecutionSignaledEventAttributes?.signalName;
    return name ? [name] : [];
  });
}

/** The failure a requester workflow failed with. */
function failureOf(t: ExecutionContext, error: unknown): ApplicationFailure | undefined {
  t.true(error instanceof WorkflowFailedError, String(error));
  const cause = (error as WorkflowFailedError | undefined)?.cause;
  t.true(cause instanceof ApplicationFailure, String(cause));
  return cause instanceof ApplicationFailure ? cause : undefined;
}

// ---- What the workflow side's withLock promises as the client's does (test/_helpers/lock-contract.ts) ----

lockContract({
  requesters: 'workflows',
  lockTimeout: 'a LockTimeout failure',
  coordinator,
  id: (label) => env.id(label),
  // A requester workflow of its own (`lockingWorkflow` in test/_helpers/workflows.ts) that records its section's enter
  // and exit, throws from it if asked, and returns its token.
  async withLock(resourceId, { who, hold, fail }, { waitTimeout } = {}) {
    const requester = await startLocking(resourceId, who, { hold, fail, waitTimeout });
    return requester.result();
  },
  sections: sectionsOf,
  // The failure carries no fields but its type: its message names the resource.
  assertLockTimeout(t, error, { resourceId }) {
    const failure = failureOf(t, error);
    t.is(failure?.type, failureTypes.lockTimeout);
    t.true(failure?.message.includes(resourceId), failure?.message);
  },
  assertLimitMismatch(t, error, { resourceId }) {
    const failure = failureOf(t, error);
    t.is(failure?.type, failureTypes.limitMismatch);
    t.true(failure?.message.includes(resourceId), failure?.message);
  },
  assertSectionError(t, error) {
    t.like(failureOf(t, error), { type: 'SectionFailed', message: 'the section failed' });
  },
});

// ---- The workflow side alone: requesters of both kinds, and what only workflows do ----

test('workflow and client requesters of one lock never overlap, and tokens increase across both', async (t) => {
  const resourceId = env.id('mixed-exclusion');
  const workflows = await Promise.all(
    Array.from({ length: 5 }, (_, i) => startLocking(resourceId, `workflow-${i}`, { hold: 30 })),
  );
  const clients = Array.from({ length: 5 }, (_, i) => clientLocking(resourceId, `client-${i}`, 30));
  const tokens = await Promise.all([...workflows.map((handle) => handle.result()), ...clients]);
  const entered = assertExclusive(t, sectionsOf(resourceId));
  t.is(entered.length, 10);
  t.deepEqual(
    entered.map(({ token }) => token).sort((a, b) => a - b),
    [...tokens].sort((a, b) => a - b),
    'each requester got the token it held',
  );
});

test('workflow and client waiters are granted in the order their requests reached the lock', async (t) => {
  const resourceId = env.id('mixed-fifo');
  const holder = await coordinator().acquire(resourceId);
  const order = ['workflow-1', 'client-1', 'workflow-2', 'client-2', 'workflow-3'];
  const done: Promise<unknown>[] = [];
  for (const [i, who] of order.entries()) {
    if (who.startsWith('client')) done.push(clientLocking(resourceId, who));
    else done.push((await startLocking(resourceId, who)).result());
    await untilWaiting(resourceId, i + 1);
  }
  await holder.release();
  await Promise.all(done);
  const entered = assertExclusive(t, sectionsOf(resourceId));
  t.deepEqual(
    entered.map(({ who }) => who),
    order,
  );
  t.true(entered[0]!.token > holder.token);
});

test('a requester workflow terminated while holding keeps the lock until its lease expires, then it moves on', async (t) => {
  const resourceId = env.id('terminated');
  // A ttl with room for a renewal (its budget is what is left of the lease) to get through a server loaded by the other
  // tests of this file and the 1,000-waiter test; otherwise the holder can lose its lease before it is terminated.
  const ttl = 6_000;
  const doomed = await startLocking(resourceId, 'doomed', { hold: 600_000, ttl });
  await until('the doomed workflow holds the lock', () => sectionsOf(resourceId).length === 1);
  // Long enough for renewals to have kept the lease past its first ttl.
  await sleep(ttl * 1.5);
  await doomed.terminate('test: the holder dies');
  const terminatedAt = performance.now();
  const { holders } = await coordinator().lockStatus(resourceId);
  t.deepEqual(
    holders.map(({ token }) => token),
    [sectionsOf(resourceId)[0]!.token],
    'nothing frees the lock when its holder is terminated',
  );
  const token = await clientLocking(resourceId, 'next', 0);
  // How soon after the ttl is a matter of load; the holder fault case bounds it (test/faults/lock-holder.fault.ts).
  t.log(`granted ${Math.round(performance.now() - terminatedAt)} ms after the termination (ttl ${ttl} ms)`);
  t.true(token > sectionsOf(resourceId)[0]!.token);
});

test('a waiting workflow that was terminated is skipped as soon as its grant cannot be delivered', async (t) => {
  const resourceId = env.id('terminated-waiter');
  const holder = await coordinator().acquire(resourceId);
  const waiter = await startLocking(resourceId, 'waiter');
  await untilWaiting(resourceId, 1);
  await waiter.terminate('test: the waiter dies');
  const next = clientLocking(resourceId, 'next', 0);
  await untilWaiting(resourceId, 2);
  const releasedAt = performance.now();
  await holder.release();
  await next;
  t.log(`granted ${Math.round(performance.now() - releasedAt)} ms after the release`);
  // Without the failed delivery, the dead waiter's grant would block the lock until the timer of its claim window
  // fired. In the lock's history, the next waiter's grant (its blocking update completing) comes first: an order of
  // events, which no load can change.
  const history = await env.client.workflow.getHandle(lockWorkflowId(resourceId)).fetchHistory();
  const lockEvents = history.events ?? [];
  const failure = lockEvents.findIndex((event) => event.signalExternalWorkflowExecutionFailedEventAttributes);
  t.true(failure >= 0, 'the grant to the dead waiter could not be delivered');
  const afterFailure = lockEvents.slice(failure);
  const granted = afterFailure.findIndex((event) => event.workflowExecutionUpdateCompletedEventAttributes);
  const timerFired = afterFailure.findIndex((event) => event.timerFiredEventAttributes);
  t.true(
    granted >= 0 && (timerFired < 0 || granted < timerFired),
    'the next waiter was granted before any timer fired',
  );
  t.deepEqual(
    sectionsOf(resourceId).map(({ who }) => who),
    ['next', 'next'],
  );
});

test('a waiting workflow that is cancelled withdraws its request and is never granted', async (t) => {
  const resourceId = env.id('cancelled-waiter');
  const holder = await coordinator().acquire(resourceId);
  const waiter = await startLocking(resourceId, 'waiter');
  await untilWaiting(resourceId, 1);
  await waiter.cancel();
  const error = await t.throwsAsync(waiter.result(), { instanceOf: WorkflowFailedError });
  t.true(error?.cause instanceof CancelledFailure);
  // The withdrawal is sent before the workflow completes.
  t.is((await coordinator().lockStatus(resourceId)).waiting, 0);
  await holder.release();
  t.is(await clientLocking(resourceId, 'next', 0), holder.token + 1, 'the next grant goes to the next requester');
  t.deepEqual(
    sectionsOf(resourceId).map(({ who }) => who),
    ['next', 'next'],
  );
  t.false((await signalsReceived(waiter)).includes('temporal-coordination.lock.answer'), 'no grant ever reached it');
});

test('a holding workflow that is cancelled releases the lock at once', async (t) => {
  const resourceId = env.id('cancelled-holder');
  const holderWorkflow = await startLocking(resourceId, 'holder', { hold: 600_000 });
  await until('the workflow holds the lock', () => sectionsOf(resourceId).length === 1);
  const next = clientLocking(resourceId, 'next', 0);
  await untilWaiting(resourceId, 1);
  const cancelledAt = performance.now();
  await holderWorkflow.cancel();
  await next;
  // Released, not lapsed: an unreleased lease would hold the lock for its whole 30 s ttl.
  const waited = performance.now() - cancelledAt;
  t.true(waited < 20_000, `granted ${Math.round(waited)} ms after the cancellation`);
  const error = await t.throwsAsync(holderWorkflow.result(), { instanceOf: WorkflowFailedError });
  t.true(error?.cause instanceof CancelledFailure);
});

test('a holding workflow whose lease is lost has its section cancelled and fails with a LeaseLost failure', async (t) => {
  const resourceId = env.id('lease-lost');
  const holder = await startLocking(resourceId, 'holder', { hold: 600_000, ttl: 3_000 });
  await until('the workflow holds the lock', () => sectionsOf(resourceId).length === 1);
  // An operator terminates the lock workflow: the next renewal finds no lock to renew.
  await env.client.workflow.getHandle(lockWorkflowId(resourceId)).terminate('test: the lock goes away');
  const error = await t.throwsAsync(holder.result(), { instanceOf: WorkflowFailedError });
  t.is((error?.cause as ApplicationFailure).type, failureTypes.leaseLost);
  t.deepEqual(
    sectionsOf(resourceId).map(({ kind }) => kind),
    ['enter'],
    'the section was cancelled, not run to its end',
  );
});

// ---- Queues ----

test('jobs enqueued from a workflow keep their place among client enqueues of the same key', async (t) => {
  const key = env.id('workflow-enqueue');
  const { enqueue } = coordinator();
  const first = await enqueue(key, 'note', [key, 'client-1']);
  const requester = await env.client.workflow.start<typeof enqueueingWorkflow>('enqueueingWorkflow', {
    workflowId: env.id('enqueuer'),
    taskQueue: env.taskQueue,
    args: [
      {
        key,
        taskQueue: env.taskQueue,
        jobs: [{ label: 'workflow-1' }, { label: 'workflow-2', jobId: 'same' }, { label: 'again', jobId: 'same' }],
      } satisfies EnqueueingInput,
    ],
  });
  const ids = await requester.result();
  t.deepEqual(ids.slice(1), ['same', 'same'], 'a second enqueue of one job ID is the same job');
  const last = await enqueue(key, 'note', [key, 'client-2']);
  await Promise.all([first.result(), last.result()]);
  t.deepEqual(
    notes.filter((note) => note.key === key).map(({ label }) => label),
    ['client-1', 'workflow-1', 'workflow-2', 'client-2'],
  );
});

test('un-awaited enqueues of one workflow to one key run in call order', async (t) => {
  const key = env.id('workflow-enqueue-order');
  const labels = Array.from({ length: 12 }, (_, i) => `job-${i}`);
  const ids = await env.client.workflow.execute<typeof enqueueingWorkflow>('enqueueingWorkflow', {
    workflowId: env.id('burst-enqueuer'),
    taskQueue: env.taskQueue,
    args: [
      {
        key,
        taskQueue: env.taskQueue,
        jobs: labels.map((label) => ({ label })),
        unawaited: true,
      } satisfies EnqueueingInput,
    ],
  });
  const { enqueue } = coordinator();
  const last = await enqueue(key, 'note', [key, 'client-after']);
  await last.result();
  t.is(ids.length, labels.length);
  t.deepEqual(
    notes.filter((note) => note.key === key).map(({ label }) => label),
    [...labels, 'client-after'],
  );
});

test('bad job input from a workflow fails its enqueue at once, with the client check as a TypeError failure', async (t) => {
  const requester = await env.client.workflow.start<typeof enqueueingWorkflow>('enqueueingWorkflow', {
    workflowId: env.id('bad-enqueuer'),
    taskQueue: env.taskQueue,
    args: [{ key: env.id('bad-enqueue'), taskQueue: env.taskQueue, jobs: [{ label: 'x' }], name: '' }],
  });
  const error = await t.throwsAsync(requester.result(), { instanceOf: WorkflowFailedError });
  t.true(error?.cause instanceof ActivityFailure);
  t.like(error?.cause?.cause, { type: 'TypeError', message: 'Expected `name` to be a non-empty string' });
});

// ---- Try-lock ----

test('tryWithLock holds a free lock, and returns at once without queueing when it is held', async (t) => {
  const resourceId = env.id('try');
  const start = (who: string) =>
    env.client.workflow.start<typeof tryLockingWorkflow>('tryLockingWorkflow', {
      workflowId: `${resourceId}|${who}`,
      taskQueue: env.taskQueue,
      args: [{ resourceId, who, hold: 50, taskQueue: env.taskQueue }],
    });
  const free = await start('free');
  const token = await free.result();
  t.true(typeof token === 'number');
  t.deepEqual(
    sectionsOf(resourceId).map(({ kind, who }) => `${kind} ${who}`),
    ['enter free', 'exit free'],
  );
  const { acquire, lockStatus } = coordinator();
  const holder = await acquire(resourceId);
  const busy = await start('busy');
  t.is(await busy.result(), undefined);
  t.like(await lockStatus(resourceId), { holders: [{ token: holder.token }], waiting: 0 }, 'the try never queued');
  await holder.release();
  for (const workflow of [free, busy]) {
    await t.notThrowsAsync(
      Worker.runReplayHistory({ workflowBundle: bundle }, await workflow.fetchHistory(), workflow.workflowId),
      `${workflow.workflowId} replays`,
    );
  }
});

// ---- Read-write locks ----

test('workflow readers hold a read-write lock together, after a client writer and before a workflow writer', async (t) => {
  const resourceId = env.id('rw');
  const { acquire } = coordinator();
  const writer = await acquire(resourceId, { mode: 'write' });
  const start = (who: string, mode: 'read' | 'write', hold: number) =>
    env.client.workflow.start<typeof readWriteWorkflow>('readWriteWorkflow', {
      workflowId: `${resourceId}|${who}`,
      taskQueue: env.taskQueue,
      args: [{ resourceId, who, hold, taskQueue: env.taskQueue, mode }],
    });
  const readers = [await start('reader 1', 'read', 1_000)];
  await untilWaiting(resourceId, 1);
  readers.push(await start('reader 2', 'read', 1_000));
  await untilWaiting(resourceId, 2);
  const lastWriter = await start('writer', 'write', 50);
  await untilWaiting(resourceId, 3);
  await writer.release();
  await Promise.all([...readers, lastWriter].map((workflow) => workflow.result()));
  const sections = sectionsOf(resourceId).map(({ kind, who }) => `${kind} ${who}`);
  t.deepEqual(sections.slice(0, 2).sort(), ['enter reader 1', 'enter reader 2'], 'the readers hold together');
  t.deepEqual(sections.slice(-2), ['enter writer', 'exit writer'], 'the writer alone, after them');
  for (const workflow of [...readers, lastWriter]) {
    await t.notThrowsAsync(
      Worker.runReplayHistory({ workflowBundle: bundle }, await workflow.fetchHistory(), workflow.workflowId),
      `${workflow.workflowId} replays`,
    );
  }
});

// ---- Leader election ----

test('workflow and client candidates lead one at a time in campaign order, seen by an observer, and replay', async (t) => {
  const electionId = env.id('election');
  const { campaign, observe } = coordinator();
  const controller = new AbortController();
  const seen: (string | undefined)[] = [];
  const observing = (async () => {
    for await (const { leader } of observe(electionId, { signal: controller.signal })) {
      seen.push(leader);
      if (leader === 'last') controller.abort();
    }
  })();
  const client = await campaign(electionId, { value: 'client' });
  const start = (who: string) =>
    env.client.workflow.start<typeof leadingWorkflow>('leadingWorkflow', {
      workflowId: `${electionId}|${who}`,
      taskQueue: env.taskQueue,
      args: [{ electionId, who, hold: 50, taskQueue: env.taskQueue }],
    });
  const first = await start('first');
  await until('the first workflow campaigns', () => waitingCandidates(electionId, 1));
  const second = await start('second');
  await until('the second workflow campaigns', () => waitingCandidates(electionId, 2));
  const lastWins = coordinator().campaign(electionId, { value: 'last' });
  await until('the last candidate campaigns', () => waitingCandidates(electionId, 3));
  await client.resign();
  const terms = [client.term, await first.result(), await second.result()];
  const last = await lastWins;
  await last.resign();
  await observing;
  t.deepEqual(
    seen.filter((leader) => leader !== undefined),
    ['client', 'first', 'second', 'last'],
  );
  t.deepEqual([...terms, last.term], [...terms, last.term].sort(), 'terms increase');
  t.deepEqual(
    assertExclusive(t, sectionsOf(electionId)).map(({ who }) => who),
    ['first', 'second'],
  );
  for (const workflow of [first, second]) {
    await t.notThrowsAsync(
      Worker.runReplayHistory({ workflowBundle: bundle }, await workflow.fetchHistory(), workflow.workflowId),
      `${workflow.workflowId} replays`,
    );
  }
});

// ---- Several locks at once ----

test('workflow and client requesters of overlapping lock sets in opposite orders never deadlock or overlap', async (t) => {
  const label = env.id('sets');
  const [a, b, c] = ['a', 'b', 'c'].map((name) => `${label}-${name}`) as [string, string, string];
  const workflows = await Promise.all([
    startLockingSet(label, 'forward', { resourceIds: [a, b, c] }),
    startLockingSet(label, 'backward', { resourceIds: [c, b, a] }),
    startLockingSet(label, 'pair', { resourceIds: [c, a, c] }),
  ]);
  const client = coordinator().withLocks([b, a], async (leases) => {
    const token = [...leases.values()][0]!.token;
    events.push({ kind: 'enter', who: 'client', token, resourceId: label });
    await sleep(50);
    events.push({ kind: 'exit', who: 'client', token, resourceId: label });
  });
  const [forward, backward, pair] = await Promise.all(workflows.map((workflow) => workflow.result()));
  await client;
  t.deepEqual(Object.keys(forward!), [a, b, c]);
  t.deepEqual(Object.keys(backward!), [a, b, c], 'taken in sorted order whatever the order asked');
  t.deepEqual(Object.keys(pair!), [a, c], 'duplicates dropped');
  // Every pair of these sets shares a lock, so no two sections may overlap.
  t.is(assertExclusive(t, sectionsOf(label)).length, 4);
  for (const workflow of workflows) {
    await t.notThrowsAsync(
      Worker.runReplayHistory({ workflowBundle: bundle }, await workflow.fetchHistory(), workflow.workflowId),
      `${workflow.workflowId} replays`,
    );
  }
});

test("a workflow's waitTimeout covers its whole lock set, and the locks it took are released when it gives up", async (t) => {
  const label = env.id('set-timeout');
  const [free, busy] = [`${label}-a`, `${label}-b`];
  const { acquire, lockStatus } = coordinator();
  const holder = await acquire(busy);
  const requester = await startLockingSet(label, 'waiter', { resourceIds: [busy, free], waitTimeout: 1_500 });
  const failure = failureOf(t, await t.throwsAsync(requester.result()));
  t.is(failure?.type, failureTypes.lockTimeout);
  t.true(failure?.message.includes(busy), failure?.message);
  t.true(failure?.message.includes('1500 ms'), failure?.message);
  t.like(await lockStatus(free), { holders: [], waiting: 0 }, 'the lock taken first was released');
  await untilWaitingOn(coordinator(), busy, 0);
  await holder.release();
});

// ---- Determinism ----

test('histories of workflow requesters and of the lock they share replay deterministically', async (t) => {
  const resourceId = env.id('replay');
  const { acquire } = coordinator();
  const clientHolder = await acquire(resourceId);
  // Queued behind the client: a workflow that gets the lock, one cancelled and one terminated while waiting, a client
  // and another workflow.
  const first = await startLocking(resourceId, 'first');
  await untilWaiting(resourceId, 1);
  const cancelled = await startLocking(resourceId, 'cancelled');
  await untilWaiting(resourceId, 2);
  const client = clientLocking(resourceId, 'client');
  await untilWaiting(resourceId, 3);
  const terminated = await startLocking(resourceId, 'terminated');
  await untilWaiting(resourceId, 4);
  const last = await startLocking(resourceId, 'last');
  await untilWaiting(resourceId, 5);
  await cancelled.cancel();
  await terminated.terminate('test: the waiter dies');
  const enqueuer = await env.client.workflow.start<typeof enqueueingWorkflow>('enqueueingWorkflow', {
    workflowId: `${resourceId}|enqueuer`,
    taskQueue: env.taskQueue,
    args: [{ key: resourceId, taskQueue: env.taskQueue, jobs: [{ label: 'a' }, { label: 'b' }] }],
  });
  await clientHolder.release();
  await Promise.allSettled([first.result(), cancelled.result(), client, last.result(), enqueuer.result()]);
  t.deepEqual(
    assertExclusive(t, sectionsOf(resourceId)).map(({ who }) => who),
    ['first', 'client', 'last'],
  );
  // The lock workflow exits once idle: its whole history (grants signalled to workflows, one that could not be
  // delivered, a withdrawal) replays too.
  const lock = env.client.workflow.getHandle(lockWorkflowId(resourceId));
  await until('the lock workflow completes', async () => (await workflowStatus(lock.workflowId)) === 'COMPLETED');
  const lockHistory = await lock.fetchHistory();
  t.true(
    (lockHistory.events ?? []).some((event) => event.signalExternalWorkflowExecutionFailedEventAttributes),
    'the grant to the terminated waiter could not be delivered',
  );
  for (const handle of [first, cancelled, last, enqueuer, lock]) {
    const history = handle === lock ? lockHistory : await handle.fetchHistory();
    await t.notThrowsAsync(
      Worker.runReplayHistory({ workflowBundle: bundle }, history, handle.workflowId),
      `${handle.workflowId} replays`,
    );
  }
});
