/**
 * `withSemaphore`: at most N holders of a resource at once, granted in arrival order.
 *
 *   npm run example -- semaphore
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { lockStatus, withSemaphore } from 'temporal-coordination';
import { createWorker } from 'temporal-coordination/worker';

Runtime.install({ logger: new DefaultLogger('WARN') });
// The coordination workflows need a worker somewhere (see worker.ts); this one runs in-process.
const worker = await createWorker();

await worker.runUntil(async () => {
  const start = performance.now();
  const at = () => `${((performance.now() - start) / 1000).toFixed(2).padStart(5)} s`;
  let busy = 0;
  let mostBusy = 0;
  let statusShown: Promise<void> | undefined;

  // Six renders share a pool of 2 GPUs. Every process of the service asks the same semaphore: `gpu-pool`, limit 2.
  const renders = ['render-1', 'render-2', 'render-3', 'render-4', 'render-5', 'render-6'].map((name) =>
    withSemaphore('gpu-pool', 2, async (lease) => {
      busy += 1;
      mostBusy = Math.max(mostBusy, busy);
      console.log(`${at()}  ${name} starts (token ${lease.token}); GPUs busy: ${busy} of 2`);
      // Once both GPUs are busy, look at the semaphore from the outside, as any process can. The first two renders
      // keep their GPUs until it has answered, so it sees them both.
      if (busy === 2) {
        statusShown ??= lockStatus('gpu-pool').then(({ limit, holders, waiting }) =>
          console.log(`${at()}  lockStatus('gpu-pool'): limit ${limit}, ${holders.length} holders, ${waiting} waiting`),
        );
      }
      await sleep(500);
      await statusShown;
      busy -= 1;
      console.log(`${at()}  ${name} done`);
    }),
  );

  await Promise.all(renders);
  await statusShown;
  console.log(`all 6 renders done; at most ${mostBusy} ran at once`);
});
