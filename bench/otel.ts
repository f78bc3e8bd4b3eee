/**
 * `--otel`: every selected scenario runs a second time, right after the first, with the OpenTelemetry SDK registered
 * (metrics and spans recorded, exported to nowhere), its rows marked `[otel]`, so the cost of the instrumentation
 * shows beside the same numbers without it, taken in the same run.
 * @module
 */
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode } from '@opentelemetry/core';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Row, Scenario } from './scenario.js';

const discardMetrics: PushMetricExporter = {
  export: (_metrics, done) => done({ code: ExportResultCode.SUCCESS }),
  forceFlush: async () => {},
  shutdown: async () => {},
};
const discardSpans: SpanExporter = {
  export: (_spans, done) => done({ code: ExportResultCode.SUCCESS }),
  shutdown: async () => {},
};

/** Registers an SDK as a service would (periodic metric export, batched spans) that exports nothing; returns its off. */
function registerSdk(): () => Promise<void> {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  const meterProvider = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: discardMetrics, exportIntervalMillis: 5_000 })],
  });
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discardSpans)] });
  context.setGlobalContextManager(contextManager);
  metrics.setGlobalMeterProvider(meterProvider);
  trace.setGlobalTracerProvider(tracerProvider);
  return async () => {
    metrics.disable();
    trace.disable();
    context.disable();
    await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
  };
}

/** `scenario` again, instrumented: named `<name>+otel`, its rows' metrics marked `[otel]` and left out of ratios. */
export function withOtel(scenario: Scenario): Scenario {
  return {
    name: `${scenario.name}+otel`,
    description: `${scenario.description} With the OpenTelemetry SDK registered (exporting nowhere).`,
    async run(ctx) {
      const off = registerSdk();
      try {
        await scenario.run({
          ...ctx,
          record: ({ compare: _, ...row }: Row) => ctx.record({ ...row, metric: `${row.metric} [otel]` }),
        });
      } finally {
        await off();
      }
    },
  };
}
