/**
 * Worker side: host the coordination workflows and queue jobs.
 *
 * ```ts
 * import { createWorker } from 'temporal-coordination/worker';
 * const worker = await createWorker({ jobs: { sendInvoice: async (id) => { ... } } });
 * await worker.run();
 * ```
 * @module
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { DEFAULT_TASK_QUEUE } from './context.js';
import { createJobActivities, type JobHandlers } from './queue/activities.js';
import { Telemetry, type TelemetryOptions } from './telemetry.js';
import { createWorkflowRequestActivities } from './workflow-requests/activities.js';

export { currentJob, type JobContext, type JobHandler, type JobHandlers } from './queue/activities.js';
export type { TelemetryOptions } from './telemetry.js';

/**
 * The activities a worker hosting the coordination workflows needs (pass them to your own `Worker` if you host it
 * yourself): the one that runs the given queue jobs, and those through which `withLock` and `enqueue` from
 * `temporal-coordination/workflows` reach the coordination workflows.
 */
export function createActivities(
  jobs: JobHandlers = {},
  options: { readonly telemetry?: TelemetryOptions } = {},
): Record<string, (input: never) => Promise<unknown>> {
  return {
    ...createJobActivities(jobs, Telemetry.create(options.telemetry)),
    ...createWorkflowRequestActivities(options.telemetry),
  };
}

function resolveWorkflowsPath(): string {
  const compiled = fileURLToPath(new URL('./workflows/index.js', import.meta.url));
  // Run from source (tests, examples under tsx) there is no .js next to this file, only the .ts.
  return existsSync(compiled) ? compiled : compiled.replace(/\.js$/, '.ts');
}

/** Path of the workflow module to give a Temporal `Worker` (`workflowsPath`) that hosts the coordination workflows. */
export const workflowsPath: string = resolveWorkflowsPath();

/**
 * Give this to your own `Worker` (`workflowFailureErrorTypes`) if you host the coordination workflows yourself. A lock
 * workflow whose history cannot be replayed (a nondeterminism error, which the Temporal SDK has been seen to cause
 * after a worker dies mid-task) then fails, and the resource's next request starts a new run: its holders lose their
 * leases, its waiters queue again. Otherwise the workflow's tasks fail for good and the resource is wedged until an
 * operator terminates the workflow. Queue workflows keep the default: their pending jobs must never be dropped.
 */
export const workflowFailureErrorTypes: NonNullable<WorkerOptions['workflowFailureErrorTypes']> = {
  '*': [],
  lockWorkflow: ['NondeterminismError'],
};

export interface CreateWorkerOptions extends Partial<Omit<WorkerOptions, 'connection' | 'namespace' | 'taskQueue'>> {
  /**
   * Connection to the Temporal server.
   * @default one made from the environment with @temporalio/envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...)
   */
  readonly connection?: NativeConnection;
  /**
   * Namespace to poll.
   * @default the environment's (TEMPORAL_NAMESPACE), else 'default'
   */
  readonly namespace?: string;
  /**
   * Task queue to poll; clients must use the same one.
   * @default 'temporal-coordination'
   */
  readonly taskQueue?: string;
  /**
   * Queue job handlers by name: `enqueue(key, name, args)` runs `jobs[name](...args)`.
   * @default {}
   */
  readonly jobs?: JobHandlers;
  /**
   * OpenTelemetry metrics and spans of the jobs' attempts, through the global API of `@opentelemetry/api` if it is
   * installed (register the SDK before creating the worker); give it the same `group` as the coordinators.
   * @default { group: the part of the key before its first `:`, resourceIds: false }
   */
  readonly telemetry?: TelemetryOptions;
}

/**
 * Creates a Temporal `Worker` hosting the coordination workflows (and the given queue jobs) on the coordination task
 * queue. Call `worker.run()` to start it and `worker.shutdown()` to stop it. It sends activity heartbeats at most once
 * a second (`defaultHeartbeatThrottleInterval: '1s'` unless given), so that a cancelled job's handler hears of it
 * within about a second.
 */
export async function createWorker(options: CreateWorkerOptions = {}): Promise<Worker> {
  const { connection, namespace, taskQueue = DEFAULT_TASK_QUEUE, jobs = {}, telemetry, ...workerOptions } = options;
  const activities = createActivities(jobs, { telemetry });
  let resolvedConnection = connection;
  let resolvedNamespace = namespace;
  if (!resolvedConnection) {
    const config = loadClientConnectConfig();
    resolvedConnection = await NativeConnection.connect(config.connectionOptions);
    resolvedNamespace ??= config.namespace;
  }
  return Worker.create({
    ...(workerOptions.workflowBundle ? {} : { workflowsPath }),
    // A cancel reaches a running job with the answer to a heartbeat: at most one per second keeps that prompt.
    defaultHeartbeatThrottleInterval: '1s',
    ...workerOptions,
    workflowFailureErrorTypes: { ...workflowFailureErrorTypes, ...workerOptions.workflowFailureErrorTypes },
    activities: { ...activities, ...workerOptions.activities },
    connection: resolvedConnection,
    namespace: resolvedNamespace ?? 'default',
    taskQueue,
  });
}
