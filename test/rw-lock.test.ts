import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCoordinator, LockModeMismatchError } from '../lib/index.js';
import { untilWaiting } from './_helpers/locks.js';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';

// Read-write locks through the package's entry point only. Readers and writers in separate processes against a
// fenced table: test/rw-lock-cross-process.test.ts.

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('rw-lock');
});
test.after.always(async () => {
  await env?.teardown();
});

const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });

test('readers hold together, a writer alone, and a reader that came after a waiting writer waits for it', async (t) => {
  const id = env.id('rw');
  const { acquire, lockStatus } = coordinator();
  const readers = await Promise.all([acquire(id, { mode: 'read' }), acquire(id, { mode: 'read' })]);
  t.like(await lockStatus(id), { limit: 0, holders: [{ mode: 'read' }, { mode: 'read' }] });
  const writer = acquire(id, { mode: 'write' });
  await untilWaiting(coordinator(), id, 1);
  const lateReader = acquire(id, { mode: 'read' });
  await untilWaiting(coordinator(), id, 2);
  await sleep(300);
  t.like(await lockStatus(id), { waiting: 2 }, 'the late reader does not join the readers holding');
  await Promise.all(readers.map((lease) => lease.release()));
  const writing = await writer;
  t.like(await lockStatus(id), { holders: [{ token: writing.token, mode: 'write' }], waiting: 1 });
  await writing.release();
  const reading = await lateReader;
  t.true(reading.token > writing.token && writing.token > Math.max(...readers.map((lease) => lease.token)));
  await reading.release();
});

test('withReadLock sections queued together hold together, and withWriteLock sections never beside anything', async (t) => {
  const id = env.id('rw-sections');
  let readers = 0;
  let writers = 0;
  let mostReaders = 0;
  const read = () =>
    coordinator().withReadLock(id, async () => {
      readers++;
      mostReaders = Math.max(mostReaders, readers);
      t.is(writers, 0, 'no writer beside a reader');
      await sleep(200);
      readers--;
    });
  const write = () =>
    coordinator().withWriteLock(id, async () => {
      writers++;
      t.is(writers + readers, 1, 'a writer alone');
      await sleep(50);
      writers--;
    });
  // Queued in a known order behind a writer: three readers, a writer, two readers.
  const first = await coordinator().acquire(id, { mode: 'write' });
  const sections: Promise<void>[] = [];
  for (const [section, waiting] of [
    [read, 1],
    [read, 2],
    [read, 3],
    [write, 4],
    [read, 5],
    [read, 6],
  ] as const) {
    sections.push(section());
    await untilWaiting(coordinator(), id, waiting);
  }
  await first.release();
  await Promise.all(sections);
  t.is(mostReaders, 3, 'the three readers queued together held together');
});

test('a read-write request on a busy lock, and a lock request on a busy read-write lock, fail with LockModeMismatchError', async (t) => {
  const { acquire } = coordinator();
  const lockId = env.id('plain');
  const lock = await acquire(lockId);
  const toLock = await t.throwsAsync(acquire(lockId, { mode: 'read' }), { instanceOf: LockModeMismatchError });
  t.like(toLock, { resourceId: lockId, readWrite: true });
  await lock.release();
  const rwId = env.id('read-write');
  const writer = await acquire(rwId, { mode: 'write' });
  const toReadWrite = await t.throwsAsync(acquire(rwId, { limit: 2 }), { instanceOf: LockModeMismatchError });
  t.like(toReadWrite, { resourceId: rwId, readWrite: false });
  await writer.release();
});

test('bad input fails before any request is sent', async (t) => {
  const { acquire, withReadLock, lockStatus } = coordinator();
  const id = env.id('rw-bad-input');
  await t.throwsAsync(acquire(id, { mode: 'exclusive' as never }), { instanceOf: TypeError, message: /mode/ });
  await t.throwsAsync(acquire(id, { mode: 'read', limit: 2 }), { instanceOf: TypeError, message: /limit/ });
  await t.throwsAsync(withReadLock(id, 'fn' as never), { instanceOf: TypeError, message: /fn/ });
  t.like(await lockStatus(id), { running: false });
});
