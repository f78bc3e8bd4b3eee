import test from 'ava';
import fc from 'fast-check';
import {
  QueueCore,
  queueLimits,
  utf8Length,
  type EnqueueRequest,
  type QueueCoreOptions,
} from '../lib/workflows/queue-core.js';

const options: QueueCoreOptions = { finishedWindow: 10, resultBytes: 200, failureMemory: 3, errorLength: 20 };

const job = (jobId: string, concurrency = 1, args: unknown[] = []): EnqueueRequest => ({
  jobId,
  name: 'job',
  args,
  retry: { maximumAttempts: 5 },
  timeout: 60_000,
  concurrency,
});

function drain(core: QueueCore): string[] {
  const started: string[] = [];
  for (let next = core.next(0); next; next = core.next(0)) {
    started.push(next.jobId);
    core.succeed(next.jobId, next.jobId);
  }
  return started;
}

test('jobs start in enqueue order, one at a time by default', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  for (const id of ['a', 'b', 'c']) t.true(core.enqueue(job(id)));
  t.is(core.next(0)?.jobId, 'a');
  t.is(core.next(0), undefined, 'nothing else starts while a runs');
  core.succeed('a', 1);
  t.deepEqual(drain(core), ['b', 'c']);
  t.true(core.canExit());
});

test('the job that finds the queue empty sets its concurrency; a busy queue keeps its own', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  core.enqueue(job('a', 2));
  core.enqueue(job('b', 5));
  core.enqueue(job('c', 5));
  t.is(core.next(0)?.jobId, 'a');
  t.is(core.next(0)?.jobId, 'b');
  t.is(core.next(0), undefined);
  t.is(core.status().concurrency, 2);
  core.succeed('a', 1);
  core.succeed('b', 1);
  t.deepEqual(drain(core), ['c']);
  core.enqueue(job('d', 3));
  t.is(core.status().concurrency, 3);
});

test('a known job ID is ignored while pending, running or remembered as finished', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  t.true(core.enqueue(job('a')));
  t.false(core.enqueue(job('a')), 'pending');
  core.next(0);
  t.false(core.enqueue(job('a')), 'running');
  core.succeed('a', 'done');
  t.false(core.enqueue(job('a')), 'finished');
  for (let i = 0; i < options.finishedWindow; i++) {
    core.enqueue(job(`filler-${i}`));
    drain(core);
  }
  t.deepEqual(core.jobState('a'), { state: 'unknown' }, 'past the window');
  t.true(core.enqueue(job('a')), 'accepted again once forgotten');
});

test('a paused queue starts nothing and does not exit, even when empty', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  core.pause();
  t.false(core.canExit());
  core.enqueue(job('a'));
  t.is(core.next(0), undefined);
  t.like(core.status(), { paused: true, pending: 1 });
  core.resume();
  t.deepEqual(drain(core), ['a']);
  t.true(core.canExit());
});

test('failures are recorded with their attempts, messages cut, and only the latest kept', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  for (const id of ['a', 'b', 'c', 'd']) core.enqueue(job(id));
  for (const id of ['a', 'b', 'c', 'd']) {
    core.next(0);
    core.fail(id, `${id} went wrong in a very long way`, 5, 1_000);
  }
  const { recentFailures, processed } = core.status();
  t.is(processed, 4);
  t.deepEqual(
    recentFailures.map((failure) => failure.jobId),
    ['b', 'c', 'd'],
  );
  t.is(recentFailures[0]!.error.length, options.errorLength);
  t.like(core.jobState('a'), { state: 'failed', attempts: 5 });
});

test('retained results stay within their byte budget, newest kept', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  for (let i = 0; i < 5; i++) {
    core.enqueue(job(`j${i}`));
    core.next(0);
    core.succeed(`j${i}`, 'x'.repeat(60));
  }
  t.like(core.jobState('j4'), { state: 'succeeded', retained: true, result: 'x'.repeat(60) });
  t.like(core.jobState('j0'), { state: 'succeeded', retained: false });
  const retained = [0, 1, 2, 3, 4].filter((i) => (core.jobState(`j${i}`) as { retained?: boolean }).retained);
  t.deepEqual(retained, [2, 3, 4]);
  core.enqueue(job('huge'));
  core.next(0);
  core.succeed('huge', 'y'.repeat(500));
  t.deepEqual(core.jobState('huge'), { jobId: 'huge', state: 'succeeded', retained: false }, 'too big to keep at all');
});

test('trim drops results and old records to fit, never pending jobs', (t) => {
  const core = new QueueCore(QueueCore.empty(), { ...options, resultBytes: 10_000 });
  for (let i = 0; i < 5; i++) {
    core.enqueue(job(`done-${i}`));
    core.next(0);
    core.succeed(`done-${i}`, 'r'.repeat(100));
  }
  core.enqueue(job('waiting', 1, ['a'.repeat(300)]));
  const before = core.carriedBytes();
  t.true(core.trim(before - 400));
  t.true(core.carriedBytes() <= before - 400);
  t.like(core.jobState('waiting'), { state: 'pending', position: 0 });
  t.false(core.trim(10), 'pending jobs alone exceed the budget');
  t.like(core.jobState('waiting'), { state: 'pending' });
  t.deepEqual(
    core.snapshot().pending.map((pending) => pending.jobId),
    ['waiting'],
  );
});

test('a snapshot cannot be taken with jobs running', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  core.enqueue(job('a'));
  core.next(0);
  t.throws(() => core.snapshot());
});

test('the shared limits keep the carried state under the 2 MiB payload limit', (t) => {
  t.true(queueLimits.maxArgsBytes * 4 + queueLimits.resultBytes <= 2 * 1024 * 1024);
  t.true(queueLimits.maxConcurrency <= 2_000, 'a run may have at most 2,000 pending activities');
});

test('utf8Length matches Buffer.byteLength', (t) => {
  fc.assert(fc.property(fc.string({ unit: 'binary' }), (text) => utf8Length(text) === Buffer.byteLength(text)));
  for (const text of ['\ud800', 'a\udc00b', '😀', 'ü€']) t.is(utf8Length(text), Buffer.byteLength(text), text);
});

// ---- The property: any interleaving keeps FIFO, respects concurrency and dedup, and loses nothing. ----

type Command =
  | { kind: 'enqueue'; id: number; concurrency: number }
  | { kind: 'start' }
  | { kind: 'succeed'; pick: number }
  | { kind: 'fail'; pick: number }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'restore' };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('enqueue' as const),
      id: fc.nat(25),
      concurrency: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 4, arbitrary: fc.constant({ kind: 'start' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('succeed' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fail' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'pause' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'resume' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restore' as const }) },
);

test('any sequence of enqueues, starts, outcomes, pauses and restores keeps FIFO and loses nothing', (t) => {
  fc.assert(
    fc.property(fc.array(command, { maxLength: 300 }), (commands) => {
      let core = new QueueCore(QueueCore.empty(), options);
      // The model: what was accepted, in order; what runs; what finished (for the dedup window).
      const accepted: string[] = [];
      const started: string[] = [];
      const running: string[] = [];
      const finished: string[] = [];
      let concurrency = 1;
      let paused = false;
      const finish = (pick: number, ok: boolean) => {
        if (running.length === 0) return;
        const [id] = running.splice(pick % running.length, 1);
        if (ok) core.succeed(id!, id);
        else core.fail(id!, 'nope', 2, 0);
        finished.push(id!);
        if (finished.length > options.finishedWindow) finished.shift();
      };
      for (const step of commands) {
        switch (step.kind) {
          case 'enqueue': {
            const id = `job-${step.id}`;
            const waiting = accepted.slice(started.length);
            const known = waiting.includes(id) || running.includes(id) || finished.includes(id);
            if (waiting.length === 0 && running.length === 0) concurrency = step.concurrency;
            if (core.enqueue(job(id, step.concurrency)) === known) return false;
            if (!known) accepted.push(id);
            break;
          }
          case 'start':
            for (let next = core.next(0); next; next = core.next(0)) {
              if (paused || running.length >= concurrency) return false;
              started.push(next.jobId);
              running.push(next.jobId);
            }
            if (!paused && running.length < concurrency && started.length < accepted.length) return false;
            break;
          case 'succeed':
          case 'fail':
            finish(step.pick, step.kind === 'succeed');
            break;
          case 'pause':
            core.pause();
            paused = true;
            break;
          case 'resume':
            core.resume();
            paused = false;
            break;
          case 'restore':
            // Continue-as-new happens only with nothing running: the shell waits for running jobs first.
            if (running.length === 0) core = new QueueCore(core.snapshot(), options);
            break;
        }
        // FIFO: the jobs started so far are exactly the first ones accepted, in order.
        if (started.join() !== accepted.slice(0, started.length).join()) return false;
        const waiting = accepted.slice(started.length);
        const status = core.status();
        if (status.pending !== waiting.length || status.running.join() !== running.join()) return false;
        const [head] = waiting;
        if (head !== undefined && core.jobState(head).state !== 'pending') return false;
      }
      // Nothing lost: once resumed and drained, every accepted job has started, in order, exactly once.
      core.resume();
      for (const id of [...running]) core.succeed(id, id);
      started.push(...drain(core));
      return started.join() === accepted.join() && core.canExit();
    }),
    { numRuns: 2_000 },
  );
  t.pass();
});

test('a cancelled pending job leaves the queue wherever it stands; the ones behind it move up', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  for (const id of ['a', 'b', 'c', 'd']) core.enqueue(job(id));
  t.is(core.cancel({ jobId: 'c', reason: 'not needed' }), 'pending');
  t.deepEqual(core.jobState('d'), { state: 'pending', position: 2 });
  t.deepEqual(core.jobState('c'), { jobId: 'c', state: 'cancelled', reason: 'not needed' });
  t.is(core.cancel({ jobId: 'c' }), 'none', 'a job already cancelled is no longer pending');
  t.false(core.enqueue(job('c')), 'a cancelled job ID is remembered, so a late duplicate does not run it');
  t.deepEqual(drain(core), ['a', 'b', 'd']);
  t.is(core.status().cancelled, 1);
  t.is(core.cancel({ jobId: 'a' }), 'none', 'a finished job is not cancelled');
  t.is(core.cancel({ jobId: 'zz' }), 'none');
});

test('a cancelled running job is marked until it settles: cancelled if it stopped, its outcome if it finished', (t) => {
  const core = new QueueCore(QueueCore.empty(), { ...options, resultBytes: 10_000 });
  core.enqueue(job('a', 2));
  core.enqueue(job('b', 2));
  core.next(0);
  core.next(0);
  t.is(core.cancel({ jobId: 'a', reason: 'r' }), 'running');
  t.is(core.cancel({ jobId: 'b' }), 'running');
  t.deepEqual(core.jobState('a'), { state: 'running', cancelRequested: true });
  core.stopped('a');
  core.succeed('b', 42);
  t.deepEqual(core.jobState('a'), { jobId: 'a', state: 'cancelled', reason: 'r' });
  t.deepEqual(core.jobState('b'), {
    jobId: 'b',
    state: 'succeeded',
    retained: true,
    result: 42,
    cancelRequested: true,
  });
  t.is(core.status().cancelled, 1);
  t.is(core.status().processed, 1);
});

test('a delayed head holds the queue until its time, and the jobs behind it wait (FIFO)', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  core.enqueue({ ...job('a'), runAt: 1_000 });
  core.enqueue(job('b'));
  t.is(core.next(999), undefined);
  t.is(core.wakeAt(999), 1_000);
  t.deepEqual(core.jobState('a'), { state: 'pending', position: 0, runAt: 1_000 });
  t.deepEqual(core.status().delayed, [{ jobId: 'a', runAt: 1_000 }]);
  t.false(core.canExit(), 'a delayed job keeps the workflow');
  t.is(core.next(1_000)?.jobId, 'a');
  t.is(core.wakeAt(1_000), undefined, 'nothing to wake for while a runs');
  core.succeed('a', null);
  t.is(core.next(1_000)?.jobId, 'b');
});

test('a rate limit spaces starts so that at most max start in any window, across a snapshot', (t) => {
  let core = new QueueCore(QueueCore.empty(), options);
  for (let i = 0; i < 7; i++) core.enqueue({ ...job(`j${i}`), rateLimit: { max: 3, per: 100 } });
  const starts: number[] = [];
  for (let now = 0; now <= 250; now += 10) {
    for (let next = core.next(now); next; next = core.next(now)) {
      starts.push(now);
      core.succeed(next.jobId, null);
    }
    if (now === 120) core = new QueueCore(core.snapshot(), options);
  }
  t.deepEqual(starts, [0, 0, 0, 100, 100, 100, 200]);
  t.deepEqual(core.status().rateLimit, { max: 3, per: 100 });
  for (let i = 0; i + 3 < starts.length; i++) t.true(starts[i + 3]! - starts[i]! >= 100);
});

test('the job that finds the queue empty sets the rate limit, or clears it', (t) => {
  const core = new QueueCore(QueueCore.empty(), options);
  core.enqueue({ ...job('a'), rateLimit: { max: 1, per: 1_000 } });
  core.enqueue(job('b'));
  t.is(core.next(0)?.jobId, 'a');
  core.succeed('a', null);
  t.is(core.next(10), undefined, 'b keeps the limit the queue was busy with');
  t.is(core.wakeAt(10), 1_000);
  t.is(core.next(1_000)?.jobId, 'b');
  core.succeed('b', null);
  core.enqueue(job('c'));
  t.is(core.status().rateLimit, undefined);
  t.is(core.next(1_001)?.jobId, 'c');
});
