/**
 * OpenTelemetry: a small service that takes locks and runs jobs, with the metrics printed by the SDK's console
 * exporter (swap it for an OTLP or Prometheus exporter in production: see docs/observability.md).
 *
 *   npm run example -- metrics
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { enqueue, LockTimeoutError, withLock, acquire } from 'temporal-coordination';
import { createWorker } from 'temporal-coordination/worker';

// The failure below is on purpose: keep the worker's warning about it out of the output.
Runtime.install({ logger: new DefaultLogger('ERROR') });

// The SDK is registered first: coordinators and workers take their meter and tracer when they are created.
const reader = new PeriodicExportingMetricReader({
  exporter: new ConsoleMetricExporter(),
  exportIntervalMillis: 60_000,
});
const meterProvider = new MeterProvider({ readers: [reader] });
// Spans are kept in memory here, to print a short summary instead of the console exporter's pages.
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
metrics.setGlobalMeterProvider(meterProvider);
trace.setGlobalTracerProvider(tracerProvider);

const attempts = new Map<string, number>();
const worker = await createWorker({
  jobs: {
    async sendInvoice(invoice: string) {
      const attempt = (attempts.get(invoice) ?? 0) + 1;
      attempts.set(invoice, attempt);
      await sleep(100);
      // The payment provider times out once on the second invoice: its job takes 2 attempts.
      if (invoice === 'INV-2' && attempt === 1) throw new Error('payment provider timeout');
      return `${invoice} sent`;
    },
  },
});

await worker.runUntil(async () => {
  // Three requests for invoices 1 to 3, and one that gives up waiting for a held invoice.
  for (const id of ['invoice:1', 'invoice:2', 'invoice:3']) await withLock(id, () => sleep(50));
  const held = await acquire('invoice:1');
  await withLock('invoice:1', () => {}, { waitTimeout: 200 }).catch((error: unknown) => {
    if (!(error instanceof LockTimeoutError)) throw error;
  });
  await held.release();

  const jobs = [];
  for (const invoice of ['INV-1', 'INV-2']) {
    jobs.push(await enqueue('customer:7', 'sendInvoice', [invoice], { retry: { initialInterval: '100ms' } }));
  }
  console.log(`jobs done: ${(await Promise.all(jobs.map((job) => job.result()))).join(', ')}`);
});

await tracerProvider.forceFlush();
const names = spans.getFinishedSpans().map((span) => span.name);
const count = (name: string) => names.filter((n) => n === name).length;
console.log(
  `spans: ${count('coordination.lock.wait')} lock waits, ${count('coordination.lock.hold')} holds, ` +
    `${count('coordination.enqueue')} enqueues, ${count('coordination.job')} job attempts`,
);
// Prints every metric (the console exporter), then stops.
await meterProvider.shutdown();
await tracerProvider.shutdown();
