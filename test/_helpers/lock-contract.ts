// One contract for both `withLock`s: the client's (`temporal-coordination`) and the one for workflow code
// (`temporal-coordination/workflows`). test/lock.test.ts runs it against the client, test/workflow-lock.test.ts against
// a helper workflow; each describes its side with a `LockSubject`.
//
// Only what both sides promise the same way is here. Not shared, and tested in the file of the side that has it:
// - semaphores: the workflow side's `withLock` always asks for one slot (it has no `limit`);
// - `acquire`, `await using`, `lockStatus`, `forceRelease`: client only (the contract uses a client to hold the lock
//   and to read its status, as a user of either side would);
// - stopping: the client stops waiting on an `AbortSignal`, a workflow when it is cancelled; a lost lease aborts the
//   client's `lease.signal`, and cancels the workflow's section and fails it with a LeaseLost failure;
// - `autoRenew: false` and the `ttl` timings of a lease: client only; a workflow always renews while its section runs;
// - a failed release attached to fn's error: the client test closes its connection, which a workflow cannot do;
// - what a failure looks like: a client throws our error classes, a workflow fails with an `ApplicationFailure` of the
//   matching type; each subject says how to recognise its own.
import test, { type ExecutionContext } from 'ava';
import type { Coordinator } from '../../lib/index.js';
import { nextGrantAfter, untilWaiting } from './locks.js';
import type { SectionEvent } from './workflows.js';

export type { SectionEvent };

/** What a critical section does, on either side. */
export interface Section {
  /** Names the requester in the section's events; unique within a test. */
  readonly who: string;
  /** How long the section holds the lock, across a real timer, in ms. */
  readonly hold: number;
  /** Throw from the section after its exit is recorded. */
  readonly fail?: boolean;
}

export interface LockSubject {
  /** Who requests the lock, in test titles: 'coordinators', 'workflows'. */
  readonly requesters: string;
  /** What a waitTimeout ends the wait with, in test titles. */
  readonly lockTimeout: string;
  /** A client of the same lock workflows: it holds the lock for set-up and reads its status. */
  coordinator(): Coordinator;
  /** A fresh resource ID. */
  id(label: string): string;
  /**
   * Runs `section` under this side's `withLock` as a requester of its own, and returns what the section returns: its
   * lease's token.
   */
  withLock(resourceId: string, section: Section, options?: { readonly waitTimeout?: number }): Promise<number>;
  /** Every enter and exit of the sections run on `resourceId`, in the order they happened. */
  sections(resourceId: string): readonly SectionEvent[];
  assertLockTimeout(t: ExecutionContext, error: unknown, expected: { resourceId: string; waitTimeout: number }): void;
  assertLimitMismatch(
    t: ExecutionContext,
    error: unknown,
    expected: { resourceId: string; limit: number; activeLimit: number },
  ): void;
  /** Checks that `error` is the one `section` threw. */
  assertSectionError(t: ExecutionContext, error: unknown, section: Section): void;
}

/** Sections never overlap: each enter is followed by its own exit; returns who entered, in order, with tokens. */
export function assertExclusive(t: ExecutionContext, events: readonly SectionEvent[]) {
  const entered: { who: string; token: number }[] = [];
  for (let i = 0; i < events.length; i += 2) {
    const [enter, exit] = [events[i]!, events[i + 1]];
    t.is(enter.kind, 'enter', `event ${i} enters`);
    t.like(exit, { kind: 'exit', who: enter.who, token: enter.token }, `${enter.who} leaves before anyone else enters`);
    entered.push({ who: enter.who, token: enter.token });
  }
  for (let i = 1; i < entered.length; i++) {
    t.true(entered[i]!.token > entered[i - 1]!.token, 'tokens strictly increase in grant order');
  }
  return entered;
}

const ascending = (tokens: readonly number[]) => [...tokens].sort((a, b) => a - b);

/** Registers the contract's tests, run against `subject`. */
export function lockContract(subject: LockSubject): void {
  test(`at most one holder at a time across ${subject.requesters}, with increasing tokens`, async (t) => {
    const id = subject.id('mutex');
    const tokens = await Promise.all(
      Array.from({ length: 12 }, (_, i) => subject.withLock(id, { who: `requester-${i}`, hold: 10 })),
    );
    const entered = assertExclusive(t, subject.sections(id));
    t.is(entered.length, 12);
    t.deepEqual(
      ascending(entered.map(({ token }) => token)),
      ascending(tokens),
      'withLock returned what the section returned: the token it held',
    );
  });

  test('waiters are granted in the order their requests reached the workflow', async (t) => {
    const coordinator = subject.coordinator();
    const id = subject.id('fifo');
    const holder = await coordinator.acquire(id);
    const order = Array.from({ length: 8 }, (_, i) => `waiter-${i}`);
    const waiters: Promise<number>[] = [];
    for (const [i, who] of order.entries()) {
      waiters.push(subject.withLock(id, { who, hold: 10 }));
      await untilWaiting(coordinator, id, i + 1);
    }
    await holder.release();
    await Promise.all(waiters);
    const entered = assertExclusive(t, subject.sections(id));
    t.deepEqual(
      entered.map(({ who }) => who),
      order,
    );
    t.true(entered[0]!.token > holder.token);
  });

  test(`waitTimeout ends the wait with ${subject.lockTimeout} and the request is never granted later`, async (t) => {
    const coordinator = subject.coordinator();
    const id = subject.id('timeout');
    const holder = await coordinator.acquire(id);
    const waitTimeout = 1_000;
    const error = await t.throwsAsync(subject.withLock(id, { who: 'waiter', hold: 10 }, { waitTimeout }));
    subject.assertLockTimeout(t, error, { resourceId: id, waitTimeout });
    t.is((await coordinator.lockStatus(id)).waiting, 0, 'the request was withdrawn before withLock failed');
    t.is(await nextGrantAfter(coordinator, holder), holder.token + 1, 'the withdrawn request took no grant');
    t.deepEqual(subject.sections(id), [], 'its section never ran');
    t.deepEqual((await coordinator.lockStatus(id)).holders, []);
  });

  test('a request whose limit disagrees with the running semaphore is rejected', async (t) => {
    const coordinator = subject.coordinator();
    const id = subject.id('mismatch');
    const semaphore = await coordinator.acquire(id, { limit: 2 });
    try {
      const error = await t.throwsAsync(subject.withLock(id, { who: 'requester', hold: 10 }));
      subject.assertLimitMismatch(t, error, { resourceId: id, limit: 1, activeLimit: 2 });
      t.deepEqual(subject.sections(id), [], 'its section never ran');
    } finally {
      await semaphore.release();
    }
  });

  test('the error fn throws is rethrown as is and the lock is released', async (t) => {
    const coordinator = subject.coordinator();
    const id = subject.id('throws');
    const section: Section = { who: 'failing', hold: 10, fail: true };
    const error = await t.throwsAsync(subject.withLock(id, section));
    subject.assertSectionError(t, error, section);
    t.deepEqual(
      subject.sections(id).map(({ kind }) => kind),
      ['enter', 'exit'],
      'the section ran, and threw after its exit was recorded',
    );
    t.deepEqual((await coordinator.lockStatus(id)).holders, []);
  });
}
