/**
 * Per-key job queues: one customer's jobs run strictly in order, one at a time, retries included; different
 * customers run in parallel.
 *
 *   npm run example -- per-key-queue
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { enqueue, JobFailedError, pauseQueue, queueStatus, resumeQueue } from 'temporal-coordination';
import { createWorker } from 'temporal-coordination/worker';

// The failures below are on purpose: keep the worker's warnings about them out of the output.
Runtime.install({ logger: new DefaultLogger('ERROR') });

const start = performance.now();
const at = () => `${((performance.now() - start) / 1000).toFixed(2).padStart(5)} s`;
const attempts = new Map<string, number>();

// Job handlers run on a worker (see worker.ts for a dedicated one); this one runs in-process.
const worker = await createWorker({
  jobs: {
    async sendInvoice(customer: string, invoice: string) {
      const attempt = (attempts.get(invoice) ?? 0) + 1;
      attempts.set(invoice, attempt);
      console.log(`${at()}  ${customer.padEnd(5)} ${invoice} starts (attempt ${attempt})`);
      await sleep(250);
      // The payment provider times out once on bob's second invoice: the job is retried in place, and bob's next
      // invoice waits for it.
      if (invoice === 'B-2' && attempt === 1) {
        console.log(`${at()}  ${customer.padEnd(5)} ${invoice} failed: provider timeout; retried in place`);
        throw new Error('payment provider timeout');
      }
      console.log(`${at()}  ${customer.padEnd(5)} ${invoice} done`);
      return `${invoice} sent to ${customer}`;
    },
    async closeAccount(customer: string) {
      throw new Error(`${customer} still has open invoices`);
    },
  },
});

// Job IDs make enqueueing idempotent; the batch part keeps this example's jobs apart from an earlier run's.
const batch = Date.now().toString(36);

await worker.runUntil(async () => {
  const invoices: [string, string][] = [
    ['alice', 'A-1'],
    ['bob', 'B-1'],
    ['alice', 'A-2'],
    ['bob', 'B-2'],
    ['alice', 'A-3'],
    ['bob', 'B-3'],
  ];
  const jobs = [];
  for (const [customer, invoice] of invoices) {
    // Resolves once the server has durably accepted the job, not when it ran.
    jobs.push(
      await enqueue<string>(`customer:${customer}`, 'sendInvoice', [customer, invoice], {
        jobId: `${invoice}/${batch}`,
        retry: { initialInterval: '200ms', maximumAttempts: 3 },
      }),
    );
  }
  // The same jobId again, while the job is pending or running (or recently finished), is ignored.
  const again = await enqueue('customer:alice', 'sendInvoice', ['alice', 'A-1'], { jobId: `A-1/${batch}` });
  console.log(`${at()}  enqueued ${jobs.length} jobs; re-enqueueing A-1 returned job ${again.id} (not run twice)`);

  const results = await Promise.all(jobs.map((job) => job.result()));
  console.log(`results: ${results.join(', ')}`);
  console.log(`A-1 ran ${attempts.get('A-1')} time(s); B-2 took ${attempts.get('B-2')} attempts`);

  // A job that fails for good is recorded, and the queue moves on.
  const closing = await enqueue('customer:carol', 'closeAccount', ['carol'], { retry: { maximumAttempts: 1 } });
  await closing.result().catch((error: unknown) => {
    if (!(error instanceof JobFailedError)) throw error;
    console.log(`${error.name}: ${error.message}`);
  });

  // Pausing a key stops it starting jobs (enqueue still works); resuming continues in order.
  await pauseQueue('customer:dave');
  const paused = await enqueue<string>('customer:dave', 'sendInvoice', ['dave', 'D-1']);
  await sleep(500);
  const status = await queueStatus('customer:dave');
  console.log(
    `customer:dave paused: ${status.paused}, pending: ${status.pending}, D-1 is ${(await paused.status()).state}`,
  );
  await resumeQueue('customer:dave');
  console.log(`after resumeQueue: ${await paused.result()}`);
});
