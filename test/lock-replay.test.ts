// A lock workflow's history must replay with the same code, or the next worker to load it (after a restart, or when the
// workflow is evicted from the cache) fails its tasks forever and the resource wedges. A busy lock interleaves signals,
// updates and their completions in every way; its histories are then replayed, every run of them.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from '@temporalio/worker';
import { createCoordinator } from '../lib/index.js';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { lockIdPrefix } from '../lib/ids.js';
import { workflowsPath } from '../lib/worker.js';
import { startTestEnv, workflowBundle, type TestEnv } from './_helpers/temporal.js';

let env: TestEnv;
test.before(async () => {
  env = await startTestEnv('lock-replay');
});
test.after.always(async () => {
  await env?.teardown();
});

test('the histories of a busy lock replay deterministically', async (t) => {
  const id = env.id('replay');
  const contenders = 16;
  const deadline = performance.now() + 8_000;
  let grants = 0;
  let tried = 0;
  // Separate coordinators, as separate processes: each one's waiter goes straight to a blocking wait when near the head.
  // A few try instead of waiting, so tries, granted and refused, interleave with the rest.
  await Promise.all(
    Array.from({ length: contenders }, async (_, index) => {
      const { withLock, tryAcquire } = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
      while (performance.now() < deadline) {
        if (index >= 3) {
          await withLock(id, () => grants++);
          continue;
        }
        tried++;
        const lease = await tryAcquire(id);
        await (lease ? lease.release() : sleep(20));
      }
    }),
  );
  t.true(tried > 0);
  const workflowId = lockIdPrefix(DEFAULT_ID_PREFIX) + id;
  // With more contenders than the head slots, the histories include the memo the far-back waiters read.
  const { events } = await env.client.workflow.getHandle(workflowId).fetchHistory();
  t.true(events!.some((event) => event.workflowPropertiesModifiedEventAttributes));
  const bundle = workflowBundle();
  const histories = env.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }).intoHistories();
  const failures: string[] = [];
  let runs = 0;
  for await (const result of Worker.runReplayHistories(
    bundle ? { workflowBundle: bundle } : { workflowsPath },
    histories,
  )) {
    runs++;
    if (result.error) failures.push(`run ${result.runId}: ${result.error.message.slice(0, 300)}`);
  }
  t.log(`${grants} grants, ${runs} runs replayed`);
  t.true(runs > 0);
  t.deepEqual(failures, []);
});
