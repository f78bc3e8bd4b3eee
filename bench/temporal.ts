/**
 * Connection and worker boilerplate shared by scenarios.
 * @module
 */
import { retryInterceptors } from '../lib/rpc.js';
import { Client, Connection } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Worker,
  type LogEntry,
  type WorkerOptions,
  type WorkflowBundle,
} from '@temporalio/worker';
import type { ProgressReporter, ScenarioContext } from './scenario.js';

/** A Temporal logger that keeps warnings and errors only, printed above the progress line. */
export function benchLogger(progress: ProgressReporter): DefaultLogger {
  return new DefaultLogger('WARN', (entry: LogEntry) => {
    // Expected of workflow-only workers.
    if (entry.message.startsWith('No activities registered')) return;
    const meta =
      entry.meta === undefined || Object.keys(entry.meta).length === 0 ? '' : ` ${JSON.stringify(entry.meta)}`;
    progress.log(`${entry.level} ${entry.message}${meta}`);
  });
}

/** Bundles the workflows of one file (untimed, 1-2 s), quietly. */
export function bundleWorkflows(ctx: ScenarioContext, workflowsPath: string): Promise<WorkflowBundle> {
  ctx.progress.update('bundling workflows');
  return bundleWorkflowCode({ workflowsPath, logger: benchLogger(ctx.progress) });
}

export interface BenchClient {
  readonly client: Client;
  close(): Promise<void>;
}

/** A client on a connection of its own, as a separate process would have. */
export async function connectClient(ctx: ScenarioContext): Promise<BenchClient> {
  const connection = await Connection.connect({ address: ctx.address, interceptors: retryInterceptors() });
  const client = new Client({ connection, namespace: ctx.namespace });
  return { client, close: () => connection.close() };
}

/**
 * Runs `fn` with every RPC that `clients` start inside it cancelled on Ctrl-C, so that none is left retrying against
 * a closed connection or a stopped server.
 */
export function cancelOnInterrupt<T>(
  ctx: ScenarioContext,
  clients: readonly BenchClient[],
  fn: () => Promise<T>,
): Promise<T> {
  const bound = clients.reduce<() => Promise<T>>(
    (inner, { client }) =>
      () =>
        client.withAbortSignal(ctx.signal, inner),
    fn,
  );
  return bound();
}

export interface BenchWorker {
  readonly worker: Worker;
  /** Rejects if the worker stops before {@link stop}: race the scenario against it, so a dead worker fails the run. */
  readonly crashed: Promise<never>;
  /** Shuts the worker down, waits for it to finish and closes its connection. */
  stop(): Promise<void>;
}

/** Starts a worker on `ctx.taskQueue` (unless `options.taskQueue` says otherwise) and its own native connection. */
export async function startWorker(
  ctx: ScenarioContext,
  options: Omit<WorkerOptions, 'connection' | 'namespace' | 'taskQueue'> & { readonly taskQueue?: string },
): Promise<BenchWorker> {
  const taskQueue = options.taskQueue ?? ctx.taskQueue;
  const connection = await NativeConnection.connect({ address: ctx.address });
  let worker: Worker;
  try {
    worker = await Worker.create({ ...options, connection, namespace: ctx.namespace, taskQueue });
  } catch (error) {
    await connection.close();
    throw error;
  }
  let stopping = false;
  const running = worker.run();
  const crashed = new Promise<never>((_, reject) => {
    running.then(
      () => {
        if (!stopping) reject(new Error(`The worker on ${taskQueue} stopped unexpectedly`));
      },
      (error: unknown) => {
        if (!stopping) reject(new Error(`The worker on ${taskQueue} failed`, { cause: error }));
      },
    );
  });
  crashed.catch(() => {}); // Raced by the scenario, or not at all.
  return {
    worker,
    crashed,
    stop: async () => {
      stopping = true;
      try {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      } finally {
        await connection.close();
      }
    },
  };
}
