/**
 * A dedicated worker process: it hosts the coordination workflows (locks, semaphores, queues) and runs queue jobs.
 * Deploy one or more like any Temporal worker; processes that only call `withLock`, `enqueue`, ... need no worker.
 *
 *   npm run example -- worker        (Ctrl-C to stop)
 *
 * Then, from another process: `await enqueue('customer:7', 'sendInvoice', ['INV-1'])`.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createWorker } from 'temporal-coordination/worker';

// Temporal's runtime shuts the worker down gracefully on SIGINT and SIGTERM: running jobs finish first.
Runtime.install({ logger: new DefaultLogger('WARN') });

const worker = await createWorker({
  // Every worker on the task queue must register the same jobs: any of them may be handed any job.
  jobs: {
    async sendInvoice(invoiceId: string) {
      console.log(`sendInvoice(${JSON.stringify(invoiceId)})`);
      return `invoice ${invoiceId} sent`;
    },
  },
});
const { namespace, taskQueue } = worker.options;
console.log(`worker running: namespace ${namespace}, task queue ${taskQueue}; Ctrl-C to stop`);
await worker.run();
console.log('worker stopped');
