/**
 * `--otel`: every selected scenario runs four times in a row: plain, with the OpenTelemetry SDK registered (metrics and
 * spans recorded, exported to nowhere), instrumented again, plain again. The mirrored order puts a drift over the run
 * (the server's growing state, the machine's load) on both sides alike, and the two runs of each side measure the noise
 * that the instrumentation's cost is judged against (`otelCosts`).
 * @module
 */
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode } from '@opentelemetry/core';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { costedOperations, markdownTable } from './compare.js';
import type { Result } from './report.js';
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

/** The marks of the three runs after the first, appended to their rows' metrics. */
const OTEL = ' [otel]';
const OTEL_AGAIN = ' [otel 2]';
const PLAIN_AGAIN = ' [plain 2]';

/** `scenario` again, its rows' metrics marked `mark` and left out of ratios; instrumented if `instrumented`. */
function rerun(scenario: Scenario, suffix: string, mark: string, instrumented: boolean): Scenario {
  return {
    name: `${scenario.name}${suffix}`,
    description: instrumented
      ? `${scenario.description} With the OpenTelemetry SDK registered (exporting nowhere).`
      : `${scenario.description} Again, plain.`,
    async run(ctx) {
      const off = instrumented ? registerSdk() : async () => {};
      try {
        await scenario.run({
          ...ctx,
          record: ({ compare: _, ...row }: Row) => ctx.record({ ...row, metric: `${row.metric}${mark}` }),
        });
      } finally {
        await off();
      }
    },
  };
}

/** The four runs of `scenario` that `--otel` makes: plain, instrumented, instrumented, plain. */
export function withOtel(scenario: Scenario): Scenario[] {
  return [
    scenario,
    rerun(scenario, '+otel', OTEL, true),
    rerun(scenario, '+otel.2', OTEL_AGAIN, true),
    rerun(scenario, '.2', PLAIN_AGAIN, false),
  ];
}

/** One metric's four runs: p50 and bench-process CPU per operation of each. */
export interface OtelCost {
  readonly metric: string;
  /** p50 ms of the runs, in the order run: plain, OTel, OTel, plain. */
  readonly p50: readonly [number, number, number, number];
  /** The largest of the runs' 95% confidence half-widths of their p50, in ms. */
  readonly p50Uncertainty: number;
  /** Bench process CPU ms per operation of the runs, when the rows measured it. */
  readonly cpu?: readonly [number, number, number, number];
}

/**
 * Half the width of the 95% confidence interval of the median of `samples`, from order statistics (the ranks
 * n/2 +- 0.98 sqrt(n)): how far a p50 could move by chance alone.
 */
function medianHalfWidth(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  if (n < 2) return 0;
  const spread = 0.98 * Math.sqrt(n);
  const low = sorted[Math.max(0, Math.floor(n / 2 - spread))]!;
  const high = sorted[Math.min(n - 1, Math.ceil(n / 2 + spread))]!;
  return (high - low) / 2;
}

const cpuPerOperation = (result: Result): number | undefined => {
  const operations = costedOperations(result);
  const cpu = result.cost?.processCpuMs;
  return cpu === undefined || operations === 0 ? undefined : cpu / operations;
};

/** The metrics measured in all four runs of `--otel`. */
export function otelCosts(results: readonly Result[]): OtelCost[] {
  const byMetric = new Map(results.map((result) => [result.metric, result]));
  const costs: OtelCost[] = [];
  for (const first of results) {
    const runs = [first.metric, ...[OTEL, OTEL_AGAIN, PLAIN_AGAIN].map((mark) => first.metric + mark)].map((metric) =>
      byMetric.get(metric),
    );
    if (runs.some((run) => run === undefined)) continue;
    const [a, b, c, d] = runs as [Result, Result, Result, Result];
    const cpu = [a, b, c, d].map(cpuPerOperation);
    costs.push({
      metric: first.metric,
      p50: [a.p50, b.p50, c.p50, d.p50],
      p50Uncertainty: Math.max(...[a, b, c, d].map((run) => medianHalfWidth(run.samplesMs))),
      ...(cpu.every((value) => value !== undefined) ? { cpu: cpu as [number, number, number, number] } : {}),
    });
  }
  return costs;
}

/**
 * OTel minus plain (means of the two runs each), against the noise: the larger spread between the two runs of one
 * side, or `uncertainty` if larger. Within the noise when the difference is no larger than that.
 */
function judge([plain1, otel1, otel2, plain2]: readonly number[], uncertainty = 0): { cost: number; noise: number } {
  return {
    cost: (otel1! + otel2!) / 2 - (plain1! + plain2!) / 2,
    noise: Math.max(Math.abs(plain1! - plain2!), Math.abs(otel1! - otel2!), uncertainty),
  };
}

export function formatOtelCosts(costs: readonly OtelCost[]): string {
  const fixed = (value: number) => value.toFixed(2);
  const verdict = (values: readonly number[], uncertainty?: number) => {
    const { cost, noise } = judge(values, uncertainty);
    return [
      `${cost >= 0 ? '+' : ''}${fixed(cost)}`,
      fixed(noise),
      Math.abs(cost) <= noise ? 'within noise' : 'above noise',
    ];
  };
  return markdownTable(
    [
      'metric',
      'p50 ms: plain / OTel / OTel / plain',
      'p50: OTel - plain',
      'p50 noise',
      'p50',
      'CPU ms/op, same order',
      'CPU: OTel - plain',
      'CPU noise',
      'CPU',
    ],
    costs.map((row) => [
      row.metric,
      row.p50.map(fixed).join(' / '),
      ...verdict(row.p50, row.p50Uncertainty),
      row.cpu ? row.cpu.map(fixed).join(' / ') : '-',
      ...(row.cpu ? verdict(row.cpu) : ['-', '-', '-']),
    ]),
    1,
  );
}
