import test from 'ava';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { queueIdPrefix } from '../lib/ids.js';
import { createCoordinator, JobFailedError } from '../lib/index.js';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';

// ---- Fixtures: handlers log their runs per key, so tests can check order, overlap and attempts. ----

interface Span {
  readonly id: string;
  readonly start: number;
  end: number;
}
const spans = new Map<string, Span[]>();
const attempts = new Map<string, number>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function spansOf(key: string): Span[] {
  let list = spans.get(key);
  if (!list) spans.set(key, (list = []));
  return list;
}

const jobs = {
  /** Runs for `ms`, logging its span under `key`, and returns `id`. */
  async record(key: string, id: string, ms: number) {
    const span: Span = { id, start: performance.now(), end: Number.NaN };
    spansOf(key).push(span);
    await sleep(ms);
    span.end = performance.now();
    return id;
  },
  /** Fails its first `failures` attempts, then runs like `record`. */
  async flaky(key: string, id: string, failures: number) {
    const count = (attempts.get(`${key}/${id}`) ?? 0) + 1;
    attempts.set(`${key}/${id}`, count);
    if (count <= failures) throw new Error(`${id} failed attempt ${count}`);
    return jobs.record(key, id, 5);
  },
  async fail(message: string) {
    throw new Error(message);
  },
};

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('queue-local', { jobs });
});
test.after.always(async () => {
  await env?.teardown();
});
const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });
const fastRetry = { initialInterval: 20, maximumInterval: 100 };

/** How many markers (local activity results) and activity tasks the key's current run has recorded. */
async function historyCounts(key: string): Promise<{ markers: number; activityTasks: number }> {
  const handle = env.client.workflow.getHandle(queueIdPrefix(DEFAULT_ID_PREFIX) + key);
  const events = (await handle.fetchHistory()).events ?? [];
  return {
    markers: events.filter((event) => event.markerRecordedEventAttributes).length,
    activityTasks: events.filter((event) => event.activityTaskScheduledEventAttributes).length,
  };
}

test('local jobs run one at a time in enqueue order, as local activities', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('local-fifo');
  const ids = Array.from({ length: 10 }, (_, index) => `job-${index}`);
  const handles = [];
  for (const [index, id] of ids.entries()) {
    handles.push(await enqueue(key, 'record', [key, id, 3 + (index % 4) * 5], { local: true }));
  }
  t.deepEqual(await Promise.all(handles.map((job) => job.result())), ids);
  const list = spansOf(key);
  t.deepEqual(
    list.map((span) => span.id),
    ids,
  );
  for (let index = 1; index < list.length; index++) t.true(list[index]!.start >= list[index - 1]!.end);
  t.deepEqual(await historyCounts(key), { markers: ids.length, activityTasks: 0 }, 'one marker per job, no activity');
});

test('local and normal jobs of one key keep their enqueue order', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('local-mixed');
  const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
  const handles = [];
  for (const [index, id] of ids.entries()) {
    handles.push(await enqueue(key, 'record', [key, id, 5], { local: index % 2 === 0 }));
  }
  t.deepEqual(await Promise.all(handles.map((job) => job.result())), ids);
  t.deepEqual(
    spansOf(key).map((span) => span.id),
    ids,
  );
});

test('a local job is retried in place: the next job starts only after it succeeded', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('local-retry');
  const first = await enqueue(key, 'flaky', [key, 'flaky', 2], { retry: fastRetry, local: true });
  const second = await enqueue(key, 'record', [key, 'next', 5], { local: true });
  t.is(await first.result(), 'flaky');
  t.is(await second.result(), 'next');
  t.is(attempts.get(`${key}/flaky`), 3);
  t.deepEqual(
    spansOf(key).map((span) => span.id),
    ['flaky', 'next'],
  );
});

test('a local job that fails every attempt fails for good with its attempts counted, and the queue moves on', async (t) => {
  const { enqueue, queueStatus } = coordinator();
  const key = env.id('local-failure');
  const failing = await enqueue(key, 'fail', ['boom'], {
    retry: { ...fastRetry, maximumAttempts: 3 },
    jobId: 'doomed',
    local: true,
  });
  const next = await enqueue(key, 'record', [key, 'next', 5], { local: true });
  const error = await t.throwsAsync(failing.result(), { instanceOf: JobFailedError });
  t.is(error?.jobId, 'doomed');
  t.is(error?.attempts, 3);
  t.is(error?.failure, 'boom');
  t.is(await next.result(), 'next');
  t.deepEqual(await failing.status(), { state: 'failed', error: 'boom', attempts: 3 });
  const status = await queueStatus(key);
  t.like(status.recentFailures[0], { jobId: 'doomed', name: 'fail', error: 'boom', attempts: 3 });
});

test('a local job that times out is retried, then fails with a timeout message', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('local-timeout');
  const job = await enqueue(key, 'record', [key, 'slow', 1_000], {
    timeout: 200,
    retry: { ...fastRetry, maximumAttempts: 2 },
    local: true,
  });
  const error = await t.throwsAsync(job.result(), { instanceOf: JobFailedError });
  t.is(error?.attempts, 2);
  t.regex(error?.failure ?? '', /timed out after 200 ms/);
});

test('a local job name no worker registered fails at once', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('local-unknown');
  const job = await enqueue(key, 'noSuchJob', [], { retry: fastRetry, local: true });
  const error = await t.throwsAsync(job.result(), { instanceOf: JobFailedError });
  t.is(error?.attempts, 1);
  t.regex(error?.failure ?? '', /No handler is registered for job `noSuchJob`/);
});

test('a local job reports pending then succeeded, and its result stays retrievable', async (t) => {
  const { enqueue, pauseQueue, resumeQueue } = coordinator();
  const key = env.id('local-status');
  await pauseQueue(key);
  const first = await enqueue(key, 'record', [key, 'first', 5], { jobId: 'first', local: true });
  const second = await enqueue(key, 'record', [key, 'second', 5], { jobId: 'second', local: true });
  t.deepEqual(await first.status(), { state: 'pending', position: 0 });
  t.deepEqual(await second.status(), { state: 'pending', position: 1 });
  await resumeQueue(key);
  t.is(await second.result(), 'second');
  t.deepEqual(await first.status(), { state: 'succeeded' });
  t.deepEqual(await second.status(), { state: 'succeeded' });
  t.is(await first.result(), 'first');
  // A duplicate enqueue gets the remembered result, without running the job again.
  const again = await enqueue(key, 'record', [key, 'again', 5], { jobId: 'second', local: true });
  t.is(await again.result(), 'second');
  t.deepEqual(
    spansOf(key).map((span) => span.id),
    ['first', 'second'],
  );
});

test('a bad `local` value throws a TypeError before anything is sent', async (t) => {
  const { enqueue, queueStatus } = coordinator();
  const key = env.id('local-bad-input');
  for (const local of ['yes', 1, null, {}]) {
    await t.throwsAsync(enqueue(key, 'record', [key, 'x', 1], { local: local as never }), {
      instanceOf: TypeError,
      message: /Expected `local` to be a boolean, got/,
    });
  }
  t.like(await queueStatus(key), { running: false }, 'no workflow was started');
});
