import { CostMeter } from './cost.js';
import type { ScenarioContext } from './scenario.js';
import { summarize } from './stats.js';

export interface SampleOptions {
  /** Measured iterations. @default ctx.samples */
  readonly samples?: number;
  /** Iterations run first and thrown away. @default ctx.warmup */
  readonly warmup?: number;
  /** Kept with the row in the JSON. */
  readonly note?: string;
  /** Report throughput: measured samples per second of wall time, from the first measured call to the last. */
  readonly throughput?: boolean;
  /** Report what the measured calls cost: server CPU, this process's CPU and peak RSS (see CostMeter). */
  readonly cost?: boolean;
}

/**
 * Runs `measure` `warmup + samples` times, strictly one call at a time, and records the durations of the last
 * `samples` calls as `metric`. `measure` does its own set-up and returns the milliseconds of its timed part only
 * (taken with `performance.now()`). Stops early, without recording, when `ctx.signal` is aborted.
 */
export async function sampleSequentially(
  ctx: ScenarioContext,
  metric: string,
  measure: (iteration: number) => Promise<number>,
  options: SampleOptions = {},
): Promise<number[]> {
  const samples = options.samples ?? ctx.samples;
  const warmup = options.warmup ?? ctx.warmup;
  const durations: number[] = [];
  let firstStart = 0;
  let meter: CostMeter | undefined;
  for (let iteration = 0; iteration < warmup + samples; iteration++) {
    ctx.signal.throwIfAborted();
    if (iteration < warmup) {
      ctx.progress.update(`${metric}: warm-up ${iteration + 1}/${warmup}`);
      await abortable(measure(iteration), ctx.signal);
      continue;
    }
    if (iteration === warmup) {
      if (options.cost === true) meter = await CostMeter.start(ctx);
      firstStart = performance.now();
    }
    const duration = await abortable(measure(iteration), ctx.signal);
    if (!Number.isFinite(duration) || duration < 0) {
      throw new RangeError(`Expected \`measure\` to return a duration in ms, got \`${duration}\``);
    }
    durations.push(duration);
    const { p50 } = summarize(durations);
    ctx.progress.update(`${metric}: ${durations.length}/${samples}, p50 ${p50.toFixed(2)} ms`);
  }
  const elapsed = performance.now() - firstStart;
  const usage = await meter?.stop();
  ctx.record({
    metric,
    samples: durations,
    ...(options.throughput === true && samples > 0 ? { elapsed } : {}),
    ...(options.note === undefined ? {} : { note: options.note }),
    ...(usage === undefined ? {} : { cost: { operations: samples, ...usage } }),
  });
  return durations;
}

/** Settles like `promise`, or rejects with `signal.reason` as soon as `signal` aborts (leaving `promise` behind). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.catch(() => {});
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}
