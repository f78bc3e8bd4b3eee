// OpenTelemetry: with the SDK registered (in-memory exporters), the metrics and spans match what happened on the real
// server; without the API package, everything still works and nothing is recorded.
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createCoordinator, LeaseLostError, LockTimeoutError } from '../lib/index.js';
import { Telemetry } from '../lib/telemetry.js';
import { currentJob } from '../lib/worker.js';
import { bundleWorkflowCode } from '@temporalio/worker';
import { aborted, startTestEnv, type TestEnv } from './_helpers/temporal.js';
import type { EnqueueingInput, enqueueingWorkflow } from './_helpers/workflows.js';

// ---- Fixtures: the SDK, registered globally before any coordinator or worker is made. ----

const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
// Read on demand (forceFlush) only: the interval is longer than any test.
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
const spanExporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
metrics.setGlobalMeterProvider(meterProvider);
trace.setGlobalTracerProvider(tracerProvider);

const attemptsOf = new Map<string, number>();
const jobs = {
  /** Runs until it is cancelled (or 30 s), then rejects with the signal's reason. */
  async untilCancelled() {
    const { signal } = currentJob();
    const started = Date.now();
    while (!signal.aborted && Date.now() - started < 30_000) await new Promise((resolve) => setTimeout(resolve, 10));
    signal.throwIfAborted();
  },
  /**
   * Its first attempt ignores its signal and returns `ms` after it started, long after its timeout; later attempts
   * return at once.
   */
  async outlivesTimeout(id: string, ms: number) {
    const attempt = (attemptsOf.get(id) ?? 0) + 1;
    attemptsOf.set(id, attempt);
    if (attempt === 1) await new Promise((resolve) => setTimeout(resolve, ms));
    return attempt;
  },
  /** Fails its first `failures` attempts. */
  async flaky(id: string, failures: number) {
    const attempt = (attemptsOf.get(id) ?? 0) + 1;
    attemptsOf.set(id, attempt);
    if (attempt <= failures) throw new Error(`${id} failed attempt ${attempt}`);
    return attempt;
  },
};

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('telemetry', { jobs });
});
test.after.always(async () => {
  await env?.teardown();
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
});

/** A group of this test's own, so tests running at once never count each other's operations. */
const freshGroup = (label: string) => `${label}${randomUUID().slice(0, 8)}`;
const coordinator = () => createCoordinator({ client: env.client, taskQueue: env.taskQueue });

/** The data points of metric `name` whose attributes include `attributes`, as exported now (cumulative). */
async function points<T = number>(name: string, attributes: Record<string, unknown>): Promise<DataPoint<T>[]> {
  await reader.forceFlush();
  const latest = metricExporter.getMetrics().at(-1);
  const metric = latest?.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === name);
  const all = (metric?.dataPoints ?? []) as DataPoint<T>[];
  return all.filter((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value));
}

/** The sum of a counter's matching points. */
async function total(name: string, attributes: Record<string, unknown>): Promise<number> {
  return (await points(name, attributes)).reduce((sum, point) => sum + point.value, 0);
}

/** How many values a histogram's matching points recorded. */
async function recorded(name: string, attributes: Record<string, unknown>): Promise<number> {
  return (await points<Histogram>(name, attributes)).reduce((sum, point) => sum + point.value.count, 0);
}

const spansNamed = (name: string, attributes: Record<string, unknown>) =>
  spanExporter
    .getFinishedSpans()
    .filter(
      (span) =>
        span.name === name && Object.entries(attributes).every(([key, value]) => span.attributes[key] === value),
    );

// ---- Locks ----

test('five grants are counted, and a wait that times out is counted once, as a timeout', async (t) => {
  const { withLock, acquire } = coordinator();
  const group = freshGroup('invoice');
  const id = `${group}:42`;
  for (let i = 0; i < 5; i++) await withLock(id, () => {});
  const by = { 'coordination.resource.group': group, 'coordination.lock.kind': 'lock' };
  t.is(await total('coordination.lock.grants', by), 5);
  t.is(await recorded('coordination.lock.wait.duration', { ...by, 'coordination.lock.outcome': 'granted' }), 5);
  t.is(await recorded('coordination.lock.hold.duration', by), 5);

  const held = await acquire(id);
  await t.throwsAsync(
    withLock(id, () => {}, { waitTimeout: 300 }),
    { instanceOf: LockTimeoutError },
  );
  t.is(await recorded('coordination.lock.wait.duration', { ...by, 'coordination.lock.outcome': 'timeout' }), 1);
  t.is(await total('coordination.lock.holders', by), 1, 'the held lease');
  t.is(await total('coordination.lock.waiters', by), 0, 'the timed-out waiter left');
  await held.release();
  t.is(await total('coordination.lock.grants', by), 6);
  t.is(await total('coordination.lock.holders', by), 0);
  t.is(await total('coordination.lease.lost', by), 0);
  // No resource ID unless asked for.
  t.deepEqual(await points('coordination.lock.grants', { 'coordination.resource.id': id }), []);
  t.is(spansNamed('coordination.lock.wait', { 'coordination.resource.group': group }).length, 7);
  t.is(spansNamed('coordination.lock.hold', { 'coordination.resource.group': group }).length, 6);
});

test('a waiter aborted by its signal is counted as aborted, and waiters are counted while they wait', async (t) => {
  const { acquire } = coordinator();
  const group = freshGroup('report');
  const id = `${group}:daily`;
  const by = { 'coordination.resource.group': group };
  const held = await acquire(id);
  const controller = new AbortController();
  const waiting = acquire(id, { signal: controller.signal });
  t.is(await total('coordination.lock.waiters', by), 1);
  controller.abort(new Error('caller gave up'));
  await t.throwsAsync(waiting, { message: 'caller gave up' });
  t.is(await recorded('coordination.lock.wait.duration', { ...by, 'coordination.lock.outcome': 'aborted' }), 1);
  t.is(await total('coordination.lock.waiters', by), 0);
  await held.release();
});

test('a lease taken away by forceRelease is counted as lost, revoked', async (t) => {
  const { acquire, forceRelease } = coordinator();
  const group = freshGroup('account');
  const id = `${group}:7`;
  const lease = await acquire(id, { ttl: '6s', autoRenew: false });
  t.deepEqual(await forceRelease(id, lease.token), { released: true });
  await t.throwsAsync(lease.renew(), { instanceOf: LeaseLostError });
  await aborted(lease.signal);
  const by = { 'coordination.resource.group': group };
  t.is(await total('coordination.lease.lost', { ...by, 'coordination.lease.lost.reason': 'revoked' }), 1);
  t.is(await total('coordination.lease.lost', { ...by, 'coordination.lease.lost.reason': 'expired' }), 0);
  t.is(await total('coordination.lock.holders', by), 0);
  await lease.release();
  t.is(await recorded('coordination.lock.hold.duration', by), 1, 'one hold, ended by the loss');
  const [hold] = spansNamed('coordination.lock.hold', by);
  t.is(hold?.attributes['coordination.lease.end'], 'revoked');
});

test('the critical section runs inside the hold span, so its own spans are children of it', async (t) => {
  const { withLock } = coordinator();
  const group = freshGroup('section');
  await withLock(`${group}:1`, () => {
    trace.getTracer('test').startSpan(`${group} inside`).end();
  });
  const [hold] = spansNamed('coordination.lock.hold', { 'coordination.resource.group': group });
  const [inside] = spanExporter.getFinishedSpans().filter((span) => span.name === `${group} inside`);
  t.truthy(hold);
  t.is(inside?.parentSpanContext?.spanId, hold?.spanContext().spanId);
});

test('a group function and resourceIds: true put the given group and the full ID on metrics', async (t) => {
  const group = freshGroup('billing');
  const { withSemaphore } = createCoordinator({
    client: env.client,
    taskQueue: env.taskQueue,
    telemetry: { group: () => group, resourceIds: true },
  });
  const id = `gpu-${randomUUID()}`;
  await withSemaphore(id, 2, () => {});
  const by = { 'coordination.resource.group': group, 'coordination.lock.kind': 'semaphore' };
  t.is(await total('coordination.lock.grants', { ...by, 'coordination.resource.id': id }), 1);
  t.throws(() => createCoordinator({ client: env.client, telemetry: { group: 'x' as never } }), {
    instanceOf: TypeError,
    message: 'Expected `telemetry.group` to be a function, got string',
  });
});

// ---- Elections ----

test('leaderships won are counted, and an observer times the stretch without a leader', async (t) => {
  const { campaign, observe } = coordinator();
  const group = freshGroup('scheduler');
  const id = `${group}:main`;
  const leaders: (string | undefined)[] = [];
  let ready = () => {};
  const firstSeen = new Promise<void>((resolve) => (ready = resolve));
  const observing = (async () => {
    for await (const { leader } of observe(id)) {
      leaders.push(leader);
      ready();
      if (leader === 'b') break;
    }
  })();
  await firstSeen;
  const first = await campaign(id, { value: 'a' });
  const second = campaign(id, { value: 'b' });
  // The observer sees a lead before it is handed on (it reads every quarter of a second).
  while (!leaders.includes('a')) await new Promise((resolve) => setTimeout(resolve, 50));
  await first.resign();
  await (await second).resign();
  await observing;
  // Between a's resign and b's grant the observer may read no leader: a second leaderless stretch, timed as well.
  t.true(
    ['undefined,a,b', 'undefined,a,undefined,b'].includes(leaders.map(String).join()),
    `observed ${leaders.map(String).join(', ')}`,
  );
  const stretches = leaders.filter((leader) => leader === undefined).length;
  const by = { 'coordination.resource.group': group };
  t.is(await total('coordination.election.leadership.changes', by), 2);
  t.is(await recorded('coordination.election.leaderless.duration', by), stretches, 'each stretch a leader ended');
  t.is(await total('coordination.lock.grants', { ...by, 'coordination.lock.kind': 'election' }), 2);
});

// ---- Queues ----

test('a job that took 2 attempts is recorded as such, and both attempt spans link to the enqueue span', async (t) => {
  const { enqueue } = coordinator();
  const group = freshGroup('customer');
  const jobId = randomUUID();
  const job = await enqueue(`${group}:7`, 'flaky', [jobId, 1], {
    jobId,
    retry: { initialInterval: 20, maximumInterval: 100 },
  });
  t.is(await job.result(), 2);
  const by = { 'coordination.resource.group': group, 'coordination.job.name': 'flaky' };
  t.is(await total('coordination.queue.enqueued', by), 1);
  t.is(await recorded('coordination.queue.wait.duration', by), 1, 'timed once, at the first attempt');
  const attempts = await points<Histogram>('coordination.job.attempts', by);
  t.deepEqual(
    attempts.map((point) => [point.attributes['coordination.job.outcome'], point.value.count, point.value.sum]),
    [['succeeded', 1, 2]],
  );
  t.is(await recorded('coordination.job.duration', { ...by, 'coordination.job.outcome': 'retried' }), 1);
  t.is(await recorded('coordination.job.duration', { ...by, 'coordination.job.outcome': 'succeeded' }), 1);

  const [enqueueSpan, ...more] = spansNamed('coordination.enqueue', by);
  t.is(more.length, 0);
  const runs = spansNamed('coordination.job', by).sort(
    (a, b) => Number(a.attributes['coordination.job.attempt']) - Number(b.attributes['coordination.job.attempt']),
  );
  t.deepEqual(
    runs.map((span) => [span.attributes['coordination.job.attempt'], span.attributes['coordination.job.outcome']]),
    [
      [1, 'retried'],
      [2, 'succeeded'],
    ],
  );
  for (const run of runs) {
    t.deepEqual(
      run.links.map((link) => [link.context.traceId, link.context.spanId]),
      [[enqueueSpan!.spanContext().traceId, enqueueSpan!.spanContext().spanId]],
    );
  }
});

test('a job that fails for good records its attempts as failed', async (t) => {
  const { enqueue } = coordinator();
  const group = freshGroup('closing');
  const jobId = randomUUID();
  const job = await enqueue(`${group}:1`, 'flaky', [jobId, 5], {
    jobId,
    retry: { initialInterval: 20, maximumInterval: 50, maximumAttempts: 3 },
  });
  await t.throwsAsync(job.result());
  const by = { 'coordination.resource.group': group };
  const attempts = await points<Histogram>('coordination.job.attempts', by);
  t.deepEqual(
    attempts.map((point) => [point.attributes['coordination.job.outcome'], point.value.count, point.value.sum]),
    [['failed', 1, 3]],
  );
  t.is(await recorded('coordination.job.duration', { ...by, 'coordination.job.outcome': 'retried' }), 2);
  t.is(await recorded('coordination.job.duration', { ...by, 'coordination.job.outcome': 'failed' }), 1);
});

test('an attempt the server timed out ends as timed_out even when its handler returns after it', async (t) => {
  const { enqueue } = coordinator();
  const group = freshGroup('slow');
  const jobId = randomUUID();
  // The attempt times out at 1.5 s; its heartbeat at 2 s learns that; its handler returns at 3 s, to no one.
  const job = await enqueue(`${group}:1`, 'outlivesTimeout', [jobId, 3_000], {
    jobId,
    timeout: 1_500,
    retry: { initialInterval: 20, maximumAttempts: 3 },
  });
  t.is(await job.result(), 2, "the second attempt's result is the job's");
  const by = { 'coordination.resource.group': group };
  // The late attempt ends after the job's result is in: wait for its record.
  let timedOut = 0;
  for (let tries = 0; timedOut === 0 && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    timedOut = await recorded('coordination.job.duration', { ...by, 'coordination.job.outcome': 'timed_out' });
  }
  t.is(timedOut, 1);
  t.is(await recorded('coordination.job.duration', { ...by, 'coordination.job.outcome': 'succeeded' }), 1);
  const [late] = await points<Histogram>('coordination.job.duration', {
    ...by,
    'coordination.job.outcome': 'timed_out',
  });
  t.true(late!.value.sum! >= 2_900, `the late attempt ran about 3 s (recorded ${late!.value.sum} ms)`);
  const attempts = await points<Histogram>('coordination.job.attempts', by);
  t.deepEqual(
    attempts.map((point) => [point.attributes['coordination.job.outcome'], point.value.count, point.value.sum]),
    [['succeeded', 1, 2]],
  );
  const [span] = spansNamed('coordination.job', { ...by, 'coordination.job.attempt': 1 });
  t.is(span?.attributes['coordination.job.outcome'], 'timed_out');
});

test('cancels that found their job are counted, and a cancelled running attempt ends as cancelled', async (t) => {
  const { enqueue, cancelJob } = coordinator();
  const group = freshGroup('export');
  const key = `${group}:1`;
  const running = await enqueue(key, 'untilCancelled', []);
  const pending = await enqueue(key, 'untilCancelled', []);
  const by = { 'coordination.resource.group': group };
  while ((await running.status()).state !== 'running') await new Promise((resolve) => setTimeout(resolve, 20));
  t.deepEqual(await pending.cancel(), { cancelled: true });
  t.deepEqual(await running.cancel(), { cancelled: true });
  t.deepEqual(await cancelJob(key, 'no-such-job'), { cancelled: false });
  await t.throwsAsync(running.result());
  t.is(await total('coordination.job.cancelled', by), 2, 'the cancel that found nothing is not counted');
  t.is(await recorded('coordination.job.duration', { ...by, 'coordination.job.outcome': 'cancelled' }), 1);
  t.is(await recorded('coordination.job.attempts', { ...by, 'coordination.job.outcome': 'cancelled' }), 1);
  t.is(await recorded('coordination.job.duration', by), 1, 'the pending job never ran an attempt');
});

test("enqueues from workflow code are counted and traced under the worker's telemetry options", async (t) => {
  const group = freshGroup('from-workflow');
  const { code } = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('_helpers/workflows.ts', import.meta.url)),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never,
  });
  const notes: string[] = [];
  const workflowEnv = await startTestEnv('telemetry-workflow', {
    workflowBundle: { code },
    jobs: { note: (_key: string, label: string) => void notes.push(label) },
    telemetry: { group: () => group },
  });
  try {
    const key = `invoice:${randomUUID()}`;
    await workflowEnv.client.workflow.execute<typeof enqueueingWorkflow>('enqueueingWorkflow', {
      workflowId: workflowEnv.id('enqueuer'),
      taskQueue: workflowEnv.taskQueue,
      args: [
        { key, taskQueue: workflowEnv.taskQueue, jobs: [{ label: 'a' }, { label: 'b' }] } satisfies EnqueueingInput,
      ],
    });
    for (let tries = 0; notes.length < 2 && tries < 200; tries++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual(notes, ['a', 'b']);
    const by = { 'coordination.resource.group': group, 'coordination.job.name': 'note' };
    t.is(await total('coordination.queue.enqueued', by), 2, 'counted by the enqueue activity, in the group given');
    t.is(await recorded('coordination.job.duration', { ...by, 'coordination.job.outcome': 'succeeded' }), 2);
    const enqueues = spansNamed('coordination.enqueue', by);
    t.is(enqueues.length, 2);
    const links = spansNamed('coordination.job', by).flatMap((span) => span.links.map((link) => link.context.spanId));
    t.deepEqual(links.sort(), enqueues.map((span) => span.spanContext().spanId).sort());
  } finally {
    await workflowEnv.teardown();
  }
});

// ---- Without @opentelemetry/api ----

test('without the API package, telemetry is disabled and every instrument and span is a no-op', (t) => {
  const telemetry = Telemetry.create({}, (id) => {
    throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
  });
  t.false(telemetry.enabled);
  const span = telemetry.startSpan('x', {});
  t.is(span.carrier(), undefined);
  t.is(
    span.within(() => 42),
    42,
  );
  telemetry.counter('x', 'x').add(1, {});
  span.end();
  t.true(Telemetry.create().enabled);
});

test('a process where @opentelemetry/api cannot be resolved takes locks and runs jobs as usual', async (t) => {
  const run = promisify(execFile);
  const child = new URL('_helpers/no-otel-child.ts', import.meta.url);
  const preload = new URL('_helpers/no-otel.mjs', import.meta.url);
  const { stdout } = await run(process.execPath, ['--import', preload.href, '--import', 'tsx', child.pathname], {
    env: process.env,
    timeout: 60_000,
  });
  t.regex(stdout, /telemetry enabled: false/);
  t.regex(stdout, /withLock token: \d+/);
  t.regex(stdout, /job result: ran 1/);
});
