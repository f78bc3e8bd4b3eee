// Call order from one process, cancelling jobs, delayed jobs and per-key rate limits, on the real server.
import test from 'ava';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { queueIdPrefix } from '../lib/ids.js';
import { createCoordinator, JobCancelledError } from '../lib/index.js';
import { currentJob } from '../lib/worker.js';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What each job did, by key: its label, when it started and ended (Date.now()). */
interface Run {
  readonly label: string;
  readonly start: number;
  end: number;
  /** When the queue workflow handed the job out (its activity's scheduled time, by the server's clock). */
  readonly scheduled?: number;
}
const runs = new Map<string, Run[]>();
/** Gates the tests open to let `held` jobs finish. */
const opened = new Set<string>();
/** Per gate: why the held job's signal aborted, if it did. */
const aborts = new Map<string, unknown>();

function runsOf(key: string): Run[] {
  let list = runs.get(key);
  if (!list) runs.set(key, (list = []));
  return list;
}
const labelsOf = (key: string) => runsOf(key).map((run) => run.label);

const jobs = {
  async note(key: string, label: string) {
    const scheduled = Context.current().info.scheduledTimestampMs;
    const run: Run = { label, start: Date.now(), end: Number.NaN, scheduled };
    runsOf(key).push(run);
    await sleep(5);
    run.end = Date.now();
    return label;
  },
  /** Runs until its gate opens; a cancel aborts it, and it rejects with the signal's reason. */
  async held(key: string, gate: string) {
    const run: Run = { label: gate, start: Date.now(), end: Number.NaN };
    runsOf(key).push(run);
    const { signal } = currentJob();
    try {
      while (!opened.has(gate)) {
        if (Date.now() - run.start > 60_000) throw new Error(`${gate} was never opened`);
        signal.throwIfAborted();
        await sleep(10);
      }
      return gate;
    } catch (error) {
      aborts.set(gate, signal.reason);
      throw error;
    } finally {
      run.end = Date.now();
    }
  },
  /** Runs until its gate opens, whatever its signal says. */
  async stubborn(key: string, gate: string) {
    const run: Run = { label: gate, start: Date.now(), end: Number.NaN };
    runsOf(key).push(run);
    while (!opened.has(gate) && Date.now() - run.start < 60_000) await sleep(10);
    aborts.set(gate, currentJob().signal.reason);
    run.end = Date.now();
    return gate;
  },
};

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('queue-control', { jobs });
});
test.after.always(async () => {
  await env?.teardown();
});
const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });

async function until(check: () => boolean | Promise<boolean>, what: string, timeout = 20_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeout) throw new Error(`${what}: not within ${timeout} ms`);
    await sleep(20);
  }
}

// ---- call order ----

test('un-awaited enqueues of one process to one key run in call order; another key does not wait for them', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('call-order');
  const other = env.id('call-order-other');
  const labels = Array.from({ length: 30 }, (_, i) => `job-${i}`);
  const sent = labels.map((label) => enqueue(key, 'note', [key, label]));
  let lastAccepted = false;
  void sent.at(-1)!.then(() => (lastAccepted = true));
  await enqueue(other, 'note', [other, 'other']);
  t.false(lastAccepted, "the other key's enqueue went out without waiting behind the 30");
  const handles = await Promise.all(sent);
  await Promise.all(handles.map((job) => job.result()));
  t.deepEqual(labelsOf(key), labels);
});

// ---- cancel ----

test('a cancelled pending job never runs, its result rejects with JobCancelledError, and the key moves on', async (t) => {
  const { enqueue, cancelJob, queueStatus } = coordinator();
  const key = env.id('cancel-pending');
  const gate = `${key}/first`;
  const first = await enqueue(key, 'held', [key, gate]);
  const second = await enqueue(key, 'note', [key, 'second']);
  const third = await enqueue(key, 'note', [key, 'third']);
  await until(() => runsOf(key).length === 1, 'the first job started');
  t.deepEqual(await second.cancel({ reason: 'customer left' }), { cancelled: true });
  t.deepEqual(await second.status(), { state: 'cancelled', reason: 'customer left' });
  t.deepEqual(await third.status(), { state: 'pending', position: 0 }, 'the job behind it moved up');
  t.deepEqual(await cancelJob(key, second.id), { cancelled: true }, 'cancelling again gives the same answer');
  t.is((await queueStatus(key)).cancelled, 1);
  opened.add(gate);
  t.is(await third.result(), 'third');
  const error = await t.throwsAsync(second.result(), { instanceOf: JobCancelledError });
  t.is(error?.jobId, second.id);
  t.is(error?.reason, 'customer left');
  t.deepEqual(labelsOf(key), [gate, 'third']);
  t.deepEqual(await first.cancel(), { cancelled: false }, 'a finished job is not cancelled');
  t.deepEqual(await cancelJob(key, 'no-such-job'), { cancelled: false });
});

test('cancelling a job of an idle key answers false and starts no workflow', async (t) => {
  const { cancelJob } = coordinator();
  const key = env.id('cancel-idle');
  t.deepEqual(await cancelJob(key, 'anything'), { cancelled: false });
  const { queueStatus } = coordinator();
  t.false((await queueStatus(key)).running);
});

test("a cancelled running job's handler sees its signal abort, and the next job starts only once it settled", async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('cancel-running');
  const gate = `${key}/long`;
  const long = await enqueue(key, 'held', [key, gate]);
  const next = await enqueue(key, 'note', [key, 'next']);
  await until(() => runsOf(key).length === 1, 'the long job started');
  t.deepEqual(await long.cancel({ reason: 'too slow' }), { cancelled: true });
  t.like(await long.status(), { state: 'running' });
  const error = await t.throwsAsync(long.result(), { instanceOf: JobCancelledError });
  t.is(error?.reason, 'too slow');
  t.true(aborts.get(gate) instanceof CancelledFailure, 'the handler was told through currentJob().signal');
  t.is(await next.result(), 'next');
  const [held, after] = runsOf(key);
  t.true(after!.start >= held!.end, 'the next job started after the cancelled handler settled');
});

test('a running job whose handler ignores the cancel finishes with its result; the cancel still reached it', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('cancel-stubborn');
  const gate = `${key}/stubborn`;
  const job = await enqueue(key, 'stubborn', [key, gate]);
  await until(() => runsOf(key).length === 1, 'the job started');
  t.deepEqual(await job.cancel(), { cancelled: true });
  t.deepEqual(await job.status(), { state: 'running', cancelRequested: true });
  // The cancel reaches the worker with the answer to a heartbeat (one a second): wait until the handler could know.
  await sleep(3_000);
  opened.add(gate);
  t.is(await job.result(), gate);
  t.true(aborts.get(gate) instanceof CancelledFailure);
});

// ---- delayed jobs ----

test('a delayed job starts no earlier than its time, the jobs behind it wait, and the status shows it', async (t) => {
  const { enqueue, queueStatus } = coordinator();
  const key = env.id('delayed');
  const accepted = Date.now();
  const delayed = await enqueue(key, 'note', [key, 'delayed'], { delay: '5s' });
  const behind = await enqueue(key, 'note', [key, 'behind']);
  const status = await delayed.status();
  t.is(status.state, 'pending');
  const runAt = status.state === 'pending' ? status.runAt : undefined;
  t.true(runAt instanceof Date && runAt.getTime() >= accepted + 5_000);
  const queue = await queueStatus(key);
  t.deepEqual(
    queue.delayed.map(({ jobId }) => jobId),
    [delayed.id],
  );
  t.is(queue.pending, 2);
  t.is(await behind.result(), 'behind');
  const [first, second] = runsOf(key);
  t.is(first?.label, 'delayed');
  t.true(first!.start >= runAt!.getTime(), 'not before its runAt');
  t.is(second?.label, 'behind');
});

test('runAt in the past runs the job at once; cancelling a delayed job lets the key move on at once', async (t) => {
  const { enqueue } = coordinator();
  const key = env.id('delayed-cancel');
  const past = await enqueue(key, 'note', [key, 'past'], { runAt: new Date(Date.now() - 60_000) });
  t.is(await past.result(), 'past');
  const far = await enqueue(key, 'note', [key, 'far'], { runAt: new Date(Date.now() + 3_600_000) });
  const behind = await enqueue(key, 'note', [key, 'behind']);
  t.deepEqual(await far.cancel(), { cancelled: true });
  t.is(await behind.result(), 'behind');
  await t.throwsAsync(far.result(), { instanceOf: JobCancelledError });
  t.deepEqual(labelsOf(key), ['past', 'behind']);
});

// ---- rate limits ----

test('a rate limit spaces the key’s job starts: at most max in any window of per', async (t) => {
  const { enqueue, queueStatus } = coordinator();
  const key = env.id('rate');
  const rateLimit = { max: 2, per: '1s' } as const;
  const labels = Array.from({ length: 6 }, (_, i) => `job-${i}`);
  const handles = [];
  for (const label of labels) handles.push(await enqueue(key, 'note', [key, label], { rateLimit }));
  t.deepEqual((await queueStatus(key)).rateLimit, { max: 2, per: 1_000 });
  await Promise.all(handles.map((job) => job.result()));
  t.deepEqual(labelsOf(key), labels);
  // The limit holds on the workflow's clock: the start time of the workflow task that scheduled each job. (A worker that
  // picks a job up late starts it later still, which can bring it closer to the next one.)
  const scheduled = await decisionTimes(key);
  t.is(scheduled.length, labels.length);
  t.log(`handed out at +${scheduled.map((at) => at - scheduled[0]!).join(', +')} ms`);
  for (let i = 0; i + 2 < scheduled.length; i++) {
    const apart = scheduled[i + 2]! - scheduled[i]!;
    t.true(apart >= 1_000, `jobs ${i} and ${i + 2} were handed out ${apart} ms apart`);
  }
  t.true(scheduled.at(-1)! - scheduled[0]! < 4_000, 'and not spaced much more than the limit asks');
});

/** Per scheduled job of `key`, in order: its workflow's time when it scheduled it (that task's start event). */
async function decisionTimes(key: string): Promise<number[]> {
  const history = await env.client.workflow.getHandle(queueIdPrefix(DEFAULT_ID_PREFIX) + key).fetchHistory();
  const times: number[] = [];
  let taskStarted = 0;
  for (const event of history.events ?? []) {
    const at = Number(event.eventTime?.seconds ?? 0) * 1_000 + Math.floor((event.eventTime?.nanos ?? 0) / 1e6);
    if (event.workflowTaskStartedEventAttributes) taskStarted = at;
    if (event.activityTaskScheduledEventAttributes) times.push(taskStarted);
  }
  return times;
}

// ---- bad input ----

test('bad delay, runAt, rateLimit and cancel input throw before anything is sent', async (t) => {
  const { enqueue, cancelJob } = coordinator();
  const key = env.id('bad-control');
  const cases: [string, () => Promise<unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
    ['negative delay', () => enqueue(key, 'note', [], { delay: -1 }), RangeError, /`delay`/],
    ['delay string', () => enqueue(key, 'note', [], { delay: 'later' }), TypeError, /`delay`/],
    ['invalid date', () => enqueue(key, 'note', [], { runAt: new Date('nope') }), RangeError, /`runAt`/],
    ['runAt string', () => enqueue(key, 'note', [], { runAt: 'tomorrow' as never }), TypeError, /`runAt`/],
    ['both', () => enqueue(key, 'note', [], { delay: 10, runAt: new Date() }), TypeError, /`delay` and `runAt`/],
    ['rateLimit not an object', () => enqueue(key, 'note', [], { rateLimit: 5 as never }), TypeError, /`rateLimit`/],
    ['rateLimit.max 0', () => enqueue(key, 'note', [], { rateLimit: { max: 0, per: '1s' } }), RangeError, /max/],
    ['rateLimit.max huge', () => enqueue(key, 'note', [], { rateLimit: { max: 1e6, per: '1s' } }), RangeError, /max/],
    ['rateLimit.per missing', () => enqueue(key, 'note', [], { rateLimit: { max: 1 } as never }), TypeError, /per/],
    ['rateLimit.per bad', () => enqueue(key, 'note', [], { rateLimit: { max: 1, per: -1 } }), RangeError, /per/],
    [
      'rateLimit extra',
      () => enqueue(key, 'note', [], { rateLimit: { max: 1, per: 1, burst: 2 } as never }),
      TypeError,
      /burst/,
    ],
    ['cancel empty ID', () => cancelJob(key, ''), TypeError, /`jobId`/],
    ['cancel ID not a string', () => cancelJob(key, 7 as never), TypeError, /`jobId`/],
    ['cancel long ID', () => cancelJob(key, 'x'.repeat(300)), RangeError, /`jobId`/],
    ['cancel bad key', () => cancelJob('', 'a'), TypeError, /`key`/],
    ['cancel bad reason', () => cancelJob(key, 'a', { reason: 5 as never }), TypeError, /`reason`/],
    ['cancel unknown option', () => cancelJob(key, 'a', { force: true } as never), TypeError, /`force`/],
  ];
  for (const [label, call, type, message] of cases) {
    await t.throwsAsync(call, { instanceOf: type, message }, label);
  }
  const { queueStatus } = coordinator();
  t.false((await queueStatus(key)).running, 'nothing reached the server');
});
