/**
 * `acquire` returns a lease that renews itself until released; `await using` releases it at the end of the block,
 * whether the block returns or throws.
 *
 *   npm run example -- await-using
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { acquire, lockStatus } from 'temporal-coordination';
import { createWorker } from 'temporal-coordination/worker';

Runtime.install({ logger: new DefaultLogger('WARN') });
// The coordination workflows need a worker somewhere (see worker.ts); this one runs in-process.
const worker = await createWorker();

async function describe(resourceId: string): Promise<string> {
  const { holders, waiting } = await lockStatus(resourceId);
  const tokens = holders.map((holder) => holder.token).join(', ') || 'none';
  return `${holders.length} holder(s) (tokens: ${tokens}), ${waiting} waiting`;
}

await worker.runUntil(async () => {
  {
    await using lease = await acquire('report:daily', { ttl: '4s' });
    console.log(`acquired report:daily: token ${lease.token}, expires at ${lease.expiresAt.toISOString()}`);
    console.log(`inside the block, lockStatus: ${await describe('report:daily')}`);
    // Longer than the 4 s ttl: the lease renews itself in the background, about every ttl / 3.
    await sleep(5_000, undefined, { signal: lease.signal });
    console.log(`still held after 5 s (longer than the ttl): lease.signal.aborted = ${lease.signal.aborted}`);
  } // <- released here
  console.log(`after the block, lockStatus: ${await describe('report:daily')}`);

  try {
    await using lease = await acquire('report:daily');
    console.log(`acquired report:daily again: token ${lease.token}`);
    throw new Error('the report generator crashed');
  } catch (error) {
    console.log(`the block threw (${(error as Error).message}); lockStatus: ${await describe('report:daily')}`);
  }
});
