/**
 * `withLock`: run a critical section on one resource at a time, across every process of a service.
 *
 *   npm run example -- with-lock
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { acquire, LockTimeoutError, withLock } from 'temporal-coordination';
import { createWorker } from 'temporal-coordination/worker';

Runtime.install({ logger: new DefaultLogger('WARN') });
// The coordination workflows need a worker somewhere in the cluster (see worker.ts). This one runs in-process to keep
// the example self-contained; like the client, it connects from the environment (TEMPORAL_ADDRESS, ...).
const worker = await createWorker();

await worker.runUntil(async () => {
  const start = performance.now();
  const at = () => `${((performance.now() - start) / 1000).toFixed(2).padStart(5)} s`;

  // Three requests for the same invoice arrive at once: withLock lets them in one at a time.
  let inside = 0;
  let mostInside = 0;
  const tokens: number[] = [];
  const results = await Promise.all(
    ['request-a', 'request-b', 'request-c'].map((name) =>
      withLock('invoice:42', async (lease) => {
        inside += 1;
        mostInside = Math.max(mostInside, inside);
        tokens.push(lease.token);
        console.log(`${at()}  ${name} holds invoice:42 with fencing token ${lease.token}`);
        await sleep(300); // the critical section: read, compute, write
        inside -= 1;
        return `${name} sent the invoice`;
      }),
    ),
  );
  const increasing = tokens.every((token, i) => i === 0 || token > tokens[i - 1]!);
  console.log(`withLock returned: ${results.join('; ')}`);
  console.log(`holders at once: at most ${mostInside}; tokens strictly increasing: ${increasing ? 'yes' : 'NO'}`);

  // `waitTimeout` bounds the wait: the request is withdrawn, so it is never granted later.
  const holder = await acquire('invoice:42');
  try {
    await withLock('invoice:42', async () => console.log('not reached: the lock is held'), { waitTimeout: '500ms' });
  } catch (error) {
    if (!(error instanceof LockTimeoutError)) throw error;
    console.log(`${at()}  gave up waiting: ${error.name}: ${error.message}`);
  } finally {
    await holder.release();
  }
});
