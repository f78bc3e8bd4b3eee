/**
 * What a benchmark scenario is. Each scenario is one file under `bench/scenarios/` whose default export is a
 * {@link Scenario}; the harness (`bench/index.ts`) finds it by itself.
 * @module
 */

/** One named benchmark. */
export interface Scenario {
  /** Name on the command line (`npm run bench -- <name>`) and in the table: kebab-case, the file's name. */
  readonly name: string;
  /** One sentence: what is measured, and against what. */
  readonly description: string;
  /** Runs the scenario against the shared server, recording rows with `ctx.record`. */
  run(ctx: ScenarioContext): Promise<void>;
}

/** What the harness gives a running scenario. */
export interface ScenarioContext {
  /** `host:port` of the Temporal frontend (one server for the whole bench run). */
  readonly address: string;
  readonly namespace: string;
  /** A task queue of this scenario alone (fresh each run). Derive further names from it if you need several. */
  readonly taskQueue: string;
  /** `--quick`: a short smoke run (CI) whose numbers mean little. */
  readonly quick: boolean;
  /** Measured samples per metric: 500, 30 with `--quick`, or `--samples N`. */
  readonly samples: number;
  /** Warm-up iterations per metric, not recorded: 50, 5 with `--quick`, or `--warmup N`. */
  readonly warmup: number;
  /** `--contenders N,N...`: the contender levels of a contention scenario, when given. */
  readonly contenders?: readonly number[];
  /** Aborted on Ctrl-C: stop sampling, clean up and return (or throw `signal.reason`). */
  readonly signal: AbortSignal;
  /** The one-line progress display on stderr. */
  readonly progress: ProgressReporter;
  /** Adds one row to the table and the JSON results. */
  record(row: Row): void;
}

export interface ProgressReporter {
  /** Replaces the progress line (throttled; shown only when stderr is a terminal). */
  update(text: string): void;
  /** Prints a line that stays (on any stderr). */
  log(text: string): void;
}

/** One metric of one scenario. */
export interface Row {
  /** Name of the metric, for example `signal->open-update`. */
  readonly metric: string;
  /** Latencies in milliseconds, in the order measured. */
  readonly samples: readonly number[];
  /**
   * Wall time in milliseconds over which `operations` completed, to report throughput (operations per second).
   * Leave it out when throughput means nothing beyond `1000 / mean`, as for sequential samples.
   */
  readonly elapsed?: number;
  /** Operations completed during `elapsed`. @default samples.length */
  readonly operations?: number;
  /** A short remark kept in the JSON (concurrency, payload size, ...). */
  readonly note?: string;
  /** What one operation is, so the report can set rows of different scenarios side by side (ratios, targets, chart). */
  readonly compare?: Comparable;
  /** What the row's operations cost: see `bench/cost.ts`. */
  readonly cost?: Cost;
}

/** Tags a row for the ratios to the floor and the baselines, the targets and the chart (`bench/compare.ts`). */
export interface Comparable {
  /**
   * - `hand-off`: a lock or semaphore slot passing from one holder to the next (release called -> next fn starts);
   * - `acquire-release`: an uncontended acquire and release; `try`: a `tryAcquire` of a free resource alone;
   * - `job`: a queue job, start to start; `enqueue`: an enqueue call;
   * - `activity-floor`: one activity round trip in a workflow loop, the queue's floor.
   */
  readonly kind: 'hand-off' | 'acquire-release' | 'try' | 'job' | 'enqueue' | 'activity-floor';
  /** Contenders at once (locks and semaphores). */
  readonly contenders?: number;
  /** Locks or queue keys sharing the load. @default 1 */
  readonly resources?: number;
  /** Holders admitted at once: 1 for a lock. @default 1 */
  readonly limit?: number;
}

/** Resources used while a row was measured. */
export interface Cost {
  /** Operations done while the cost was measured (warm-up included), to divide the totals by. */
  readonly operations?: number;
  /** History events written per operation, summed over every run of the workflows involved. */
  readonly historyEventsPerOp?: number;
  /** CPU time (user + system) of the Temporal dev server while the row ran, ms. */
  readonly serverCpuMs?: number;
  /** CPU time of this process (clients and the in-process worker) while the row ran, ms. */
  readonly processCpuMs?: number;
  /** Peak resident set size of this process (the worker runs in it) while the row ran, bytes. */
  readonly peakRssBytes?: number;
}

/**
 * Thrown by a scenario that cannot run here (a baseline's server is unreachable): the harness reports it as skipped,
 * with the message as the note, and does not fail the run.
 */
export class ScenarioSkipped extends Error {
  override readonly name = 'ScenarioSkipped';
}

/** Identity function that types a scenario: `export default defineScenario({ name, description, run })`. */
export function defineScenario(scenario: Scenario): Scenario {
  return scenario;
}
