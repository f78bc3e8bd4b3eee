import test, { type ExecutionContext } from 'ava';
import { WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { queueIdPrefix } from '../lib/ids.js';
import { createCoordinator, JobFailedError, JobNotFoundError } from '../lib/index.js';
import { queueTimings } from '../lib/workflows/queue-workflow.js';
import { workflowsPath } from '../lib/worker.js';
import { startTestEnv, workflowBundle, type TestEnv } from './_helpers/temporal.js';

// ---- Fixtures: handlers log what they do per key, so tests can check order and overlap. ----

interface Span {
  readonly id: string;
  readonly start: number;
  end: number;
}
const spans = new Map<string, Span[]>();
const attempts = new Map<string, number>();
const arrived = new Set<string>();
/** Gates the tests open to let `held` jobs finish: their timing never depends on how fast the server is. */
const opened = new Set<string>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function spansOf(key: string): Span[] {
  let list = spans.get(key);
  if (!list) spans.set(key, (list = []));
  return list;
}

function attempt(key: string, id: string): number {
  const count = (attempts.get(`${key}/${id}`) ?? 0) + 1;
  attempts.set(`${key}/${id}`, count);
  return count;
}

/** Runs `body`, logging its span under `key`; `body` gets the key's spans and its own. */
async function logSpan(key: string, id: string, body: (list: Span[], span: Span) => Promise<void>): Promise<string> {
  const span: Span = { id, start: performance.now(), end: Number.NaN };
  const list = spansOf(key);
  list.push(span);
  await body(list, span);
  span.end = performance.now();
  return id;
}

const jobs = {
  /** Runs for `ms`, logging its span under `key`. */
  record(key: string, id: string, ms: number) {
    return logSpan(key, id, async () => {
      await sleep(ms);
    });
  },
  /** Fails its first `failures` attempts, then logs its span like `record`. */
  async flaky(key: string, id: string, failures: number) {
    const count = attempt(key, id);
    if (count <= failures) throw new Error(`${id} failed attempt ${count}`);
    return jobs.record(key, id, 10);
  },
  /** Runs, logging its span under `key`, until `quorum` jobs of `key` run at once (or for 5 s at most). */
  crowd(key: string, id: string, quorum: number) {
    return logSpan(key, id, async (list, span) => {
      while (list.filter((other) => Number.isNaN(other.end)).length < quorum) {
        if (performance.now() - span.start > 5_000) break;
        await sleep(10);
      }
    });
  },
  /** Runs until the test opens `gate` (or for 60 s at most). */
  async held(gate: string) {
    const started = performance.now();
    while (!opened.has(gate) && performance.now() - started < 60_000) await sleep(10);
  },
  /** Waits (up to 15 s) until `other` has arrived too: both return true only if they ran at the same time. */
  async rendezvous(me: string, other: string) {
    arrived.add(me);
    const started = performance.now();
    while (!arrived.has(other)) {
      if (performance.now() - started > 15_000) return false;
      await sleep(10);
    }
    return true;
  },
  async fail(message: string) {
    throw new Error(message);
  },
  async echo(...args: unknown[]) {
    return args;
  },
};

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('queue', { jobs });
});
test.after.always(async () => {
  await env?.teardown();
});
const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });
const fastRetry = { initialInterval: 20, maximumInterval: 100 };
const workflowIdOf = (key: string) => queueIdPrefix(DEFAULT_ID_PREFIX) + key;

async function workflowStatus(key: string): Promise<string> {
  try {
    const { status } = await env.client.workflow.getHandle(workflowIdOf(key)).describe();
    return status.name;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return 'NOT_FOUND';
    throw error;
  }
}

async function waitForStatus(key: string, status: string, timeout = 15_000): Promise<number> {
  const started = performance.now();
  while ((await workflowStatus(key)) !== status) {
    if (performance.now() - started > timeout) throw new Error(`${key} did not reach ${status} in ${timeout} ms`);
    await sleep(50);
  }
  return performance.now() - started;
}

/** Spans must not overlap and must come in `ids` order. */
function assertSerial(t: ExecutionContext, list: Span[], ids: string[]) {
  t.deepEqual(
    list.map((span) => span.id),
    ids,
    'jobs start in enqueue order',
  );
  for (let i = 1; i < list.length; i++) {
    t.true(list[i]!.start >= list[i - 1]!.end, `job ${list[i]!.id} started after ${list[i - 1]!.id} ended`);
  }
}

// ---- 1. enqueue ----

test('enqueue resolves once the job is accepted, before it runs', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('accepted');
  const gate = `${key}/a`;
  const job = await enqueue(key, 'held', [gate]);
  t.is(job.key, key);
  t.is(typeof job.id, 'string');
  t.is(await workflowStatus(key), 'RUNNING');
  t.not((await job.status()).state, 'succeeded');
  opened.add(gate);
  t.is(await job.result(), undefined);
  t.deepEqual(await job.status(), { state: 'succeeded' });
});

// ---- 2. strict per-key FIFO ----

test('a key runs its jobs one at a time in enqueue order', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('fifo');
  const ids = Array.from({ length: 12 }, (_, i) => `job-${i}`);
  const handles = [];
  for (const id of ids) handles.push(await enqueue(key, 'record', [key, id, 5 + ((id.length * 7) % 30)]));
  t.deepEqual(await Promise.all(handles.map((job) => job.result())), ids);
  assertSerial(t, spansOf(key), ids);
});

test('jobs enqueued concurrently still run one at a time, each exactly once', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('burst');
  const ids = Array.from({ length: 40 }, (_, i) => `job-${i}`);
  const handles = await Promise.all(ids.map((id) => enqueue(key, 'record', [key, id, 2])));
  await Promise.all(handles.map((job) => job.result()));
  const list = spansOf(key);
  t.deepEqual([...list.map((span) => span.id)].sort(), [...ids].sort());
  for (let i = 1; i < list.length; i++) t.true(list[i]!.start >= list[i - 1]!.end);
});

test('concurrency runs up to that many jobs of a key at once, started in order', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('concurrency');
  const ids = Array.from({ length: 9 }, (_, i) => `job-${i}`);
  const handles = [];
  // Each job runs until three of them run at once, so reaching the limit is shown however slow the server is.
  for (const id of ids) handles.push(await enqueue(key, 'crowd', [key, id, 3], { concurrency: 3 }));
  // While busy, a different concurrency is ignored: the queue keeps running three at a time.
  handles.push(await enqueue(key, 'crowd', [key, 'late', 3], { concurrency: 9 }));
  await Promise.all(handles.map((job) => job.result()));
  // The workflow starts them in order; workers may pick up jobs started together in any order, so read the order
  // from the history.
  const scheduled: string[] = [];
  for (const event of (await env.client.workflow.getHandle(workflowIdOf(key)).fetchHistory()).events ?? []) {
    const payload = event.activityTaskScheduledEventAttributes?.input?.payloads?.[0];
    if (payload) scheduled.push(defaultPayloadConverter.fromPayload<{ jobId: string }>(payload).jobId);
  }
  t.deepEqual(
    scheduled,
    handles.map((job) => job.id),
  );
  const list = spansOf(key);
  let most = 0;
  for (const span of list) {
    const overlapping = list.filter((other) => other.start <= span.start && other.end > span.start).length;
    most = Math.max(most, overlapping);
  }
  t.is(most, 3);
});

// ---- 3. keys in parallel ----

test('different keys run their jobs in parallel', async (t) => {
  const { enqueue } = coordinator();
  const [a, b] = [env.id('parallel-a'), env.id('parallel-b')];
  const pair = await Promise.all([enqueue(a, 'rendezvous', [a, b]), enqueue(b, 'rendezvous', [b, a])]);
  t.deepEqual(await Promise.all(pair.map((job) => job.result())), [true, true], 'each job saw the other running');
});

// ---- 4. retries and failures ----

test('a retried job keeps its place: the next job starts only after it succeeded', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('retry');
  const first = await enqueue(key, 'flaky', [key, 'flaky', 2], { retry: fastRetry });
  const second = await enqueue(key, 'record', [key, 'next', 5]);
  t.is(await first.result(), 'flaky');
  t.is(await second.result(), 'next');
  t.is(attempts.get(`${key}/flaky`), 3);
  assertSerial(t, spansOf(key), ['flaky', 'next']);
});

test('a job that fails every attempt rejects with JobFailedError, and the queue moves on', async (t) => {
  const { enqueue, queueStatus } = coordinator();
  const key = env.id('failure');
  const failing = await enqueue(key, 'fail', ['boom'], {
    retry: { ...fastRetry, maximumAttempts: 3 },
    jobId: 'doomed',
  });
  const next = await enqueue(key, 'record', [key, 'next', 5]);
  const error = await t.throwsAsync(failing.result(), { instanceOf: JobFailedError });
  t.is(error?.jobId, 'doomed');
  t.is(error?.attempts, 3);
  t.is(error?.failure, 'boom');
  t.is(await next.result(), 'next');
  const status = await queueStatus(key);
  t.is(status.recentFailures.length, 1);
  t.like(status.recentFailures[0], { jobId: 'doomed', name: 'fail', error: 'boom', attempts: 3 });
  t.deepEqual(await failing.status(), { state: 'failed', error: 'boom', attempts: 3 });
});

test('nonRetryableErrorTypes fail a job at its first attempt', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('non-retryable');
  const job = await enqueue(key, 'fail', ['bad input'], { retry: { ...fastRetry, nonRetryableErrorTypes: ['Error'] } });
  const error = await t.throwsAsync(job.result(), { instanceOf: JobFailedError });
  t.is(error?.attempts, 1);
});

test('a job that times out is retried, then fails with a timeout message', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('timeout');
  const job = await enqueue(key, 'record', [key, 'slow', 1_000], {
    timeout: 200,
    retry: { ...fastRetry, maximumAttempts: 2 },
  });
  const error = await t.throwsAsync(job.result(), { instanceOf: JobFailedError });
  t.is(error?.attempts, 2);
  t.regex(error?.failure ?? '', /timed out after 200 ms/);
});

test('a job name no worker registered fails at once, and the queue moves on', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('unknown-job');
  const unknown = await enqueue(key, 'noSuchJob', [], { retry: fastRetry });
  const next = await enqueue(key, 'record', [key, 'next', 5]);
  const error = await t.throwsAsync(unknown.result(), { instanceOf: JobFailedError });
  t.is(error?.attempts, 1);
  t.regex(error?.failure ?? '', /No handler is registered for job `noSuchJob`/);
  t.is(await next.result(), 'next');
});

// ---- 5. dedup ----

test('a second enqueue with the same jobId returns the same job and runs it once', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('dedup');
  const blocker = await enqueue(key, 'record', [key, 'blocker', 300]);
  const first = await enqueue(key, 'record', [key, 'once', 5], { jobId: 'once' });
  const pendingDuplicate = await enqueue(key, 'record', [key, 'twice', 5], { jobId: 'once' });
  t.is(pendingDuplicate.id, 'once');
  await blocker.result();
  t.is(await first.result(), 'once');
  const finishedDuplicate = await enqueue(key, 'record', [key, 'thrice', 5], { jobId: 'once' });
  t.is(await pendingDuplicate.result(), 'once');
  t.is(await finishedDuplicate.result(), 'once');
  t.deepEqual(
    spansOf(key).map((span) => span.id),
    ['blocker', 'once'],
  );
});

// ---- 6. idle exit ----

test('a drained queue completes its workflow after the linger', async (t) => {
  const { enqueue, queueStatus } = coordinator();
  const key = env.id('idle');
  const job = await enqueue(key, 'echo', [1, 'two', { three: 3 }]);
  t.deepEqual(await job.result(), [1, 'two', { three: 3 }]);
  // How soon after the linger is a matter of load; waitForStatus fails the test if it never completes.
  const waited = await waitForStatus(key, 'COMPLETED', 60_000);
  t.log(`completed ${waited.toFixed(0)} ms after the result was read (linger ${queueTimings.linger} ms)`);
  t.like(await queueStatus(key), { running: false, pending: 0, runningJobs: [] });
});

test('enqueues racing the idle exit are never lost', async (t) => {
  const { enqueue } = coordinator();
  const iterations = 30;
  const runsPerKey: number[] = [];
  await Promise.all(
    Array.from({ length: iterations }, async (_, i) => {
      const key = env.id(`race-${i}`);
      const first = await enqueue(key, 'record', [key, 'first', 1]);
      await first.result();
      // The run exits about `linger` after the first job ended: aim the second enqueue around that moment.
      const ended = spansOf(key)[0]!.end;
      const target = ended + queueTimings.linger - 300 + i * 50;
      await sleep(Math.max(0, target - performance.now()));
      const second = await enqueue(key, 'record', [key, 'second', 1]);
      t.is(await second.result(), 'second');
      t.deepEqual(
        spansOf(key).map((span) => span.id),
        ['first', 'second'],
      );
      let runs = 0;
      for await (const _ of env.client.workflow.list({ query: `WorkflowId = '${workflowIdOf(key)}'` })) runs++;
      runsPerKey.push(runs);
    }),
  );
  const sameRun = runsPerKey.filter((runs) => runs === 1).length;
  const newRun = runsPerKey.filter((runs) => runs === 2).length;
  t.log(`second job in the same run: ${sameRun}, in a new run: ${newRun}`);
  t.is(sameRun + newRun, iterations, 'one run, or two: never a lost or a third');
  // Both sides of the exit were hit: some second jobs joined the first run, others started a new one.
  t.true(sameRun > 0, 'some second jobs reached the lingering run');
  t.true(newRun > 0, 'some second jobs came after the run exited');
});

// ---- 8. results after exit ----

test('result resolves after the key workflow has exited', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('after-exit');
  const job = await enqueue(key, 'echo', [{ nested: [1, 2, 3] }]);
  await waitForStatus(key, 'COMPLETED');
  t.deepEqual(await job.result(), [{ nested: [1, 2, 3] }]);
  t.deepEqual(await job.status(), { state: 'succeeded' });
  // A new run for the key must not hide the old job's result.
  const later = await enqueue(key, 'echo', ['later']);
  t.deepEqual(await later.result(), ['later']);
  t.deepEqual(await job.result(), [{ nested: [1, 2, 3] }]);
});

test('a failed job still rejects with JobFailedError after the workflow exited', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('failed-after-exit');
  const job = await enqueue(key, 'fail', ['kaput'], { retry: { maximumAttempts: 1 } });
  await waitForStatus(key, 'COMPLETED');
  const error = await t.throwsAsync(job.result(), { instanceOf: JobFailedError });
  t.is(error?.failure, 'kaput');
});

test('result rejects with JobNotFoundError when the key workflow was terminated', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('terminated');
  const job = await enqueue(key, 'record', [key, 'doomed', 1_500]);
  await env.client.workflow.getHandle(workflowIdOf(key)).terminate('test');
  await t.throwsAsync(job.result(), { instanceOf: JobNotFoundError });
});

test('result stops waiting when its signal aborts', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('abort');
  const job = await enqueue(key, 'record', [key, 'slow', 1_000]);
  const reason = new Error('enough');
  const controller = new AbortController();
  setTimeout(() => controller.abort(reason), 100);
  t.is(await t.throwsAsync(job.result({ signal: controller.signal })), reason);
  t.is(await job.result(), 'slow');
});

// ---- 9. pause and resume ----

test('a paused queue accepts jobs but starts none until resumed, then runs them in order', async (t) => {
  const { enqueue, pauseQueue, resumeQueue, queueStatus } = coordinator();
  const key = env.id('pause');
  const gate = `${key}/running`;
  const running = await enqueue(key, 'held', [gate]);
  while ((await running.status()).state !== 'running') await sleep(20);
  await pauseQueue(key);
  const handles = [];
  for (const id of ['a', 'b', 'c']) handles.push(await enqueue(key, 'record', [key, id, 5]));
  opened.add(gate);
  t.is(await running.result(), undefined, 'the running job finishes');
  // A window in which a job would have started, had the pause not held: a slower machine only makes it longer.
  await sleep(300);
  t.like(await queueStatus(key), { running: true, paused: true, pending: 3, runningJobs: [] });
  t.deepEqual(spansOf(key), [], 'no job started while paused');
  await resumeQueue(key);
  t.deepEqual(await Promise.all(handles.map((job) => job.result())), ['a', 'b', 'c']);
  assertSerial(t, spansOf(key), ['a', 'b', 'c']);
});

test('pausing an idle key keeps its workflow until resumed', async (t) => {
  const { pauseQueue, resumeQueue, queueStatus } = coordinator();
  const key = env.id('pause-idle');
  await resumeQueue(key);
  t.is(await workflowStatus(key), 'NOT_FOUND', 'resuming an idle key starts nothing');
  await pauseQueue(key);
  await sleep(queueTimings.linger + 500);
  t.like(await queueStatus(key), { running: true, paused: true });
  await resumeQueue(key);
  await waitForStatus(key, 'COMPLETED');
  t.pass();
});

// ---- 10. status ----

test('queueStatus reports pending, running and processed jobs', async (t) => {
  const { enqueue, queueStatus } = coordinator();
  const key = env.id('status');
  const gate = `${key}/first`;
  const first = await enqueue(key, 'held', [gate], { jobId: 'first' });
  const second = await enqueue(key, 'record', [key, 'second', 5], { jobId: 'second' });
  while ((await first.status()).state !== 'running') await sleep(20);
  t.deepEqual(await queueStatus(key), {
    key,
    running: true,
    active: true,
    paused: false,
    concurrency: 1,
    pending: 1,
    delayed: [],
    runningJobs: ['first'],
    processed: 0,
    cancelled: 0,
    recentFailures: [],
  });
  t.deepEqual(await second.status(), { state: 'pending', position: 0 });
  t.deepEqual(await first.status(), { state: 'running' });
  opened.add(gate);
  await second.result();
  t.like(await queueStatus(key), { running: true, active: true, pending: 0, runningJobs: [], processed: 2 });
});

test('queueStatus of a key with no workflow is idle, not an error', async (t) => {
  const { queueStatus } = coordinator();
  const key = env.id('never');
  t.deepEqual(await queueStatus(key), {
    key,
    running: false,
    active: false,
    paused: false,
    concurrency: 1,
    pending: 0,
    delayed: [],
    runningJobs: [],
    processed: 0,
    cancelled: 0,
    recentFailures: [],
  });
});

// ---- 11. bad input ----

test('bad input throws before anything is sent', async (t) => {
  const { enqueue, queueStatus, pauseQueue } = coordinator();
  const key = env.id('bad-input');
  const circular: Record<string, unknown> = {};
  circular['self'] = circular;
  const cases: [string, () => Promise<unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
    ['empty key', () => enqueue('', 'echo', []), TypeError, /`key`/],
    ['key not a string', () => enqueue(7 as never, 'echo', []), TypeError, /`key`/],
    ['empty name', () => enqueue(key, '', []), TypeError, /`name`/],
    ['args not an array', () => enqueue(key, 'echo', 'x' as never), TypeError, /`args`/],
    ['function', () => enqueue(key, 'echo', [{ f: () => 1 }]), TypeError, /`args\[0\]\.f` is a function/],
    ['symbol', () => enqueue(key, 'echo', [Symbol('s')]), TypeError, /`args\[0\]` is a symbol/],
    ['bigint', () => enqueue(key, 'echo', [1n]), TypeError, /`args\[0\]` is a bigint/],
    ['circular', () => enqueue(key, 'echo', [circular]), TypeError, /`args\[0\]\.self` is a circular reference/],
    ['Map', () => enqueue(key, 'echo', [new Map()]), TypeError, /`args\[0\]` is a Map/],
    ['NaN', () => enqueue(key, 'echo', [Number.NaN]), TypeError, /NaN/],
    ['oversize', () => enqueue(key, 'echo', ['x'.repeat(256 * 1024)]), RangeError, /256 KiB/],
    [
      'unknown option',
      () => enqueue(key, 'echo', [], { priority: 1 } as never),
      TypeError,
      /Unknown option `priority`/,
    ],
    [
      'unknown retry option',
      () => enqueue(key, 'echo', [], { retry: { tries: 3 } as never }),
      TypeError,
      /`retry\.tries`/,
    ],
    ['bad timeout', () => enqueue(key, 'echo', [], { timeout: -5 }), RangeError, /`timeout`/],
    ['bad timeout string', () => enqueue(key, 'echo', [], { timeout: 'soon' }), TypeError, /`timeout`/],
    ['bad attempts', () => enqueue(key, 'echo', [], { retry: { maximumAttempts: 0 } }), RangeError, /maximumAttempts/],
    ['bad concurrency', () => enqueue(key, 'echo', [], { concurrency: 1.5 }), RangeError, /`concurrency`/],
    ['empty jobId', () => enqueue(key, 'echo', [], { jobId: '' }), TypeError, /`jobId`/],
    ['bad options', () => enqueue(key, 'echo', [], 'fast' as never), TypeError, /`options`/],
    ['pause with empty key', () => pauseQueue(''), TypeError, /`key`/],
  ];
  for (const [label, call, errorClass, message] of cases) {
    await t.throwsAsync(call(), { instanceOf: errorClass, message }, label);
  }
  t.is(await workflowStatus(key), 'NOT_FOUND', 'no workflow was started');
  t.like(await queueStatus(key), { running: false });
});

test('arguments survive the trip to the handler: dates become strings, undefined properties are dropped', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('args');
  const date = new Date('2024-01-02T03:04:05.000Z');
  const job = await enqueue(key, 'echo', [{ date, gone: undefined, text: 'ü€😀' }, null, 0]);
  t.deepEqual(await job.result(), [{ date: date.toISOString(), text: 'ü€😀' }, null, 0]);
});

// ---- Determinism ----

test('a queue history with retries, failures, pauses and duplicates replays deterministically', async (t) => {
  const { enqueue, pauseQueue, resumeQueue } = coordinator();
  const key = env.id('replay');
  await pauseQueue(key);
  const handles = [
    await enqueue(key, 'flaky', [key, 'flaky', 1], { retry: fastRetry }),
    await enqueue(key, 'fail', ['nope'], { retry: { ...fastRetry, maximumAttempts: 2 } }),
    await enqueue(key, 'noSuchJob', []),
    await enqueue(key, 'echo', ['a'], { jobId: 'same', concurrency: 2 }),
    await enqueue(key, 'echo', ['b'], { jobId: 'same' }),
  ];
  await resumeQueue(key);
  await Promise.allSettled(handles.map((job) => job.result()));
  await waitForStatus(key, 'COMPLETED');
  const history = await env.client.workflow.getHandle(workflowIdOf(key)).fetchHistory();
  const bundle = workflowBundle();
  await t.notThrowsAsync(
    Worker.runReplayHistory(bundle ? { workflowBundle: bundle } : { workflowsPath }, history, workflowIdOf(key)),
  );
});
