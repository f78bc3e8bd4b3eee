/**
 * Running the library under benchmark: its workflows bundled once per bench run, a worker per measured level (on a
 * task queue of its own, so that the level's workflows can be listed and their history events counted afterwards),
 * and client "processes": each with its own connection and coordinator, as separate application processes would be.
 * @module
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { WorkerOptions, WorkflowBundle } from '@temporalio/worker';
import { createCoordinator, type Coordinator } from '../../lib/index.js';
import { createActivities, workflowsPath, type JobHandlers } from '../../lib/worker.js';
import { CostMeter, forEachLimited, historyEventsPerOp } from '../cost.js';
import type { Cost, ScenarioContext } from '../scenario.js';
import { bundleWorkflows, connectClient, startWorker, type BenchClient, type BenchWorker } from '../temporal.js';

/** More client processes than this are simulated by giving each several contenders. */
export const MAX_PROCESSES = 32;
/** How long a failed or interrupted level waits for its contenders to give up before closing their connections. */
const SETTLE_TIMEOUT = 30_000;

let bundle: Promise<WorkflowBundle> | undefined;

/** The library's workflows, bundled on first use and shared by every scenario of the run. */
export function libraryBundle(ctx: ScenarioContext): Promise<WorkflowBundle> {
  if (bundle === undefined) {
    bundle = bundleWorkflows(ctx, workflowsPath);
    bundle.catch(() => {
      bundle = undefined;
    });
  }
  return bundle;
}

export interface ClientProcess extends BenchClient {
  readonly coordinator: Coordinator;
}

export interface Level {
  readonly taskQueue: string;
  readonly worker: BenchWorker;
  /** One client per simulated process, each with its own connection and coordinator. */
  readonly processes: readonly ClientProcess[];
  /** The process that contender `index` lives in (round robin). */
  processOf(index: number): ClientProcess;
}

export interface LevelOptions {
  /** Suffix of the level's task queue. */
  readonly name: string;
  readonly processes: number;
  readonly jobs?: JobHandlers;
  /** Worker settings to measure, for example `{ maxEagerActivityReservationsPerWorkflowTask: 0 }`. */
  readonly worker?: Pick<WorkerOptions, 'maxEagerActivityReservationsPerWorkflowTask'>;
}

export interface LevelOutcome<T> {
  readonly value: T;
  readonly cost: Cost;
  readonly history: { perOp: number; workflows: number; runs: number; events: number } | undefined;
}

/**
 * Runs `measure` with a fresh worker on a task queue of its own and `processes` client processes, measuring the
 * resources it uses; then waits for the level's workflows to close and counts their history events per operation
 * (`operations(value)`), and cleans up. `measure` must stop by itself on Ctrl-C (`ctx.signal`).
 */
export async function runLevel<T>(
  ctx: ScenarioContext,
  options: LevelOptions,
  measure: (level: Level) => Promise<T>,
  operations: (value: T) => number,
): Promise<LevelOutcome<T>> {
  const taskQueue = `${ctx.taskQueue}-${options.name}`;
  const workflowBundle = await libraryBundle(ctx);
  ctx.progress.update(`${options.name}: starting a worker and ${options.processes} client processes`);
  const worker = await startWorker(ctx, {
    taskQueue,
    workflowBundle,
    activities: createActivities(options.jobs ?? {}),
    ...options.worker,
  });
  const processes: ClientProcess[] = [];
  try {
    await forEachLimited(
      Array.from({ length: options.processes }, (_, index) => index),
      8,
      async () => {
        const client = await connectClient(ctx);
        processes.push({ ...client, coordinator: createCoordinator({ client: client.client, taskQueue }) });
      },
    );
    const level: Level = {
      taskQueue,
      worker,
      processes,
      processOf: (index) => processes[index % processes.length]!,
    };
    const meter = await CostMeter.start(ctx);
    const measuring = measure(level);
    let value: T;
    try {
      value = await Promise.race([measuring, worker.crashed]);
    } catch (error) {
      // The contenders stop on failure and on Ctrl-C: let them, before their connections close. The timer is unref'd:
      // once they have stopped, it must not keep the process alive.
      await Promise.race([measuring.catch(() => {}), delay(SETTLE_TIMEOUT, undefined, { ref: false })]);
      throw error;
    }
    const usage = await meter.stop();
    const done = operations(value);
    const history = await historyEventsPerOp(ctx, processes[0]!.client, taskQueue, done);
    return {
      value,
      cost: { operations: done, ...usage, ...(history === undefined ? {} : { historyEventsPerOp: history.perOp }) },
      history,
    };
  } finally {
    ctx.progress.update(`${options.name}: stopping the worker`);
    await Promise.allSettled(processes.map((process) => process.close()));
    await worker.stop();
  }
}

/** `1 contender`, `8 contenders`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Text for a row's note: where the client processes come from. */
export function processesNote(contenders: number, processes: number): string {
  return processes === contenders
    ? `${plural(contenders, 'contender')}, each in a client process of its own (own connection and coordinator)`
    : `${plural(contenders, 'contender')} spread over ${processes} client processes (own connection and coordinator each)`;
}
