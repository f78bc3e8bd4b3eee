// A lock workflow run can end while it has holders and waiters: an operator terminates it, or the worker fails it
// because its history cannot be replayed (a nondeterminism error). The resource must move on: holders lose their
// leases, waiters are granted by a new run, with greater tokens.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createCoordinator, LeaseLostError, type Lease } from '../lib/index.js';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { lockIdPrefix } from '../lib/ids.js';
import { createWorker, type CreateWorkerOptions } from '../lib/worker.js';
import { headSlots } from '../lib/workflows/lock-protocol.js';
import { aborted, startTestEnv, workflowBundle, type TestEnv } from './_helpers/temporal.js';

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('lock-recovery');
});
test.after.always(async () => {
  await env?.teardown();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A holder with a short ttl, so it renews often, and a waiter queued behind it. */
async function holderAndWaiter(taskQueue: string, resourceId: string) {
  const { acquire, lockStatus } = createCoordinator({ client: env.client, taskQueue });
  const holder = await acquire(resourceId, { ttl: '2s' });
  const waiter = acquire(resourceId, { waitTimeout: '60s' });
  while ((await lockStatus(resourceId)).waiting < 1) await sleep(20);
  return { holder, waiter };
}

async function checkMovedOn(t: import('ava').ExecutionContext, holder: Lease, waiter: Promise<Lease>) {
  const next = await waiter;
  t.true(next.token > holder.token, `token ${next.token} after ${holder.token}`);
  await aborted(holder.signal);
  t.true(holder.signal.reason instanceof LeaseLostError);
  await next.release();
  await holder.release();
}

test('a terminated lock workflow: the holder loses its lease and the waiter is granted by a new run', async (t) => {
  const resourceId = env.id('terminated');
  const { holder, waiter } = await holderAndWaiter(env.taskQueue, resourceId);
  await env.client.workflow.getHandle(lockIdPrefix(DEFAULT_ID_PREFIX) + resourceId).terminate('test: run ends');
  await checkMovedOn(t, holder, waiter);
});

test('waiters past the head slots of a terminated run are granted by a new run too', async (t) => {
  // They wait on the run's memo, not in an update or a query: they must notice that the run is gone.
  const resourceId = env.id('terminated-far-back');
  const { acquire, lockStatus } = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
  const holder = await acquire(resourceId, { ttl: '2s' });
  const count = headSlots(1) + 4;
  const waiters = Array.from({ length: count }, () =>
    acquire(resourceId, { waitTimeout: '60s' }).then(async (lease) => {
      await lease.release();
      return lease.token;
    }),
  );
  while ((await lockStatus(resourceId)).waiting < count) await sleep(20);
  await sleep(500);
  await env.client.workflow.getHandle(lockIdPrefix(DEFAULT_ID_PREFIX) + resourceId).terminate('test: run ends');
  const tokens = await Promise.all(waiters);
  t.true(
    tokens.every((token) => token > holder.token),
    `tokens ${tokens.join(', ')} after ${holder.token}`,
  );
  await aborted(holder.signal);
  await holder.release();
});

/**
 * Runs a holder and a waiter on a worker of the real workflow code, then replaces the worker with one whose lock
 * workflow changed incompatibly (`failureTypes` is its `workflowFailureErrorTypes`): the holder's next renewal makes it
 * replay the history, which fails. Returns the statuses of the resource's runs once the resource has moved on.
 */
async function replaceWithChangedCode(
  t: import('ava').ExecutionContext,
  resourceId: string,
  failureTypes?: CreateWorkerOptions['workflowFailureErrorTypes'],
): Promise<string[]> {
  const taskQueue = `lock-recovery-${randomUUID().slice(0, 8)}`;
  const bundle = workflowBundle();
  const worker = await createWorker({
    ...(bundle ? { workflowBundle: bundle } : {}),
    connection: env.nativeConnection,
    namespace: env.namespace,
    taskQueue,
    // The next worker gets the workflow's tasks 1 s after this one stops, not 10 s.
    stickyQueueScheduleToStartTimeout: '1s',
  });
  const running = worker.run();
  const { holder, waiter } = await holderAndWaiter(taskQueue, resourceId);
  worker.shutdown();
  await running;

  const changed = await createWorker({
    workflowsPath: new URL('./_helpers/changed-lock-workflow.ts', import.meta.url).pathname,
    connection: env.nativeConnection,
    namespace: env.namespace,
    taskQueue,
    ...(failureTypes ? { workflowFailureErrorTypes: failureTypes } : {}),
  });
  const changedRunning = changed.run();
  t.teardown(async () => {
    changed.shutdown();
    await changedRunning;
  });
  await checkMovedOn(t, holder, waiter);
  const runs = [];
  const query = `WorkflowId = '${lockIdPrefix(DEFAULT_ID_PREFIX) + resourceId}'`;
  for await (const run of env.client.workflow.list({ query })) runs.push(run.status.name);
  return runs;
}

test('a lock workflow whose history no longer replays fails instead of wedging, and the resource moves on', async (t) => {
  const runs = await replaceWithChangedCode(t, env.id('nondeterministic'));
  t.true(runs.includes('FAILED'), `runs: ${runs.join(', ')}`);
});

test('a lock workflow whose tasks fail again and again is terminated by its waiters, and the resource moves on', async (t) => {
  // A worker that retries the failing task forever, as one not set up with workflowFailureErrorTypes does.
  const runs = await replaceWithChangedCode(t, env.id('stuck'), { '*': [], lockWorkflow: [] });
  t.true(runs.includes('TERMINATED'), `runs: ${runs.join(', ')}`);
});
