import { QueryRejectedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Context } from '../context.js';
import { checkResourceId, queueIdPrefix } from '../ids.js';
import { retryTransient } from '../rpc.js';
import { enqueueSignal, pauseSignal, queueStatusQuery, resumeSignal } from '../workflows/definitions.js';
import type { QueueStatus } from '../workflows/queue-core.js';
import type { QueueWorkflowInput, queueWorkflow } from '../workflows/queue-workflow.js';
import { JobWatcher, QueueJob, type Job } from './job.js';
import type { EnqueueOptions } from './options.js';
import { EnqueueTelemetry } from './telemetry.js';
import { toEnqueueRequest } from './validate.js';

export type { Job, JobStatus } from './job.js';
export type { JobFailure } from '../workflows/queue-core.js';

/** How long one call may retry transient server failures before it throws `ServerUnavailableError`. */
const RPC_BUDGET = 30_000;
const QUEUE_WORKFLOW = 'queueWorkflow';

export interface QueueStatusResult extends Omit<QueueStatus, 'running'> {
  readonly key: string;
  /** Whether a workflow is running for the key, as `lockStatus` says of a lock; an idle key reports empty counts. */
  readonly running: boolean;
  /** IDs of the jobs running now, oldest first. */
  readonly runningJobs: readonly string[];
  /** @deprecated Use `running`. */
  readonly active: boolean;
}

export interface QueueApi {
  /**
   * Appends a job to `key`'s queue and resolves once the server has durably accepted it (not when it ran). A worker
   * started with `createWorker({ jobs: { [name]: handler } })` runs `handler(...args)`: one job of a key at a time (or
   * `concurrency`), strictly in enqueue order, retries in place; keys run in parallel. Everything is validated
   * first: a `TypeError` or `RangeError` naming the bad argument means nothing was sent.
   */
  enqueue<T = unknown>(key: string, name: string, args: readonly unknown[], options?: EnqueueOptions): Promise<Job<T>>;
  /** Pending and running jobs, processed count, recent failures and the paused flag of `key`, read with a query. */
  queueStatus(key: string): Promise<QueueStatusResult>;
  /**
   * Stops starting `key`'s jobs (running ones finish); enqueues are still accepted. The pause lasts until
   * `resumeQueue`, even while the queue is empty: a paused key keeps its workflow.
   */
  pauseQueue(key: string): Promise<void>;
  /** Starts `key`'s jobs again, in order. A key that is not paused is left as it is. */
  resumeQueue(key: string): Promise<void>;
}

export function createQueueApi(context: Context): QueueApi {
  const queues = new QueueClient(context);
  return {
    enqueue: (key, name, args, options) => queues.enqueue(key, name, args, options),
    queueStatus: (key) => queues.queueStatus(key),
    pauseQueue: (key) => queues.pauseQueue(key),
    resumeQueue: (key) => queues.resumeQueue(key),
  };
}

class QueueClient {
  private readonly prefix: string;
  private readonly watcher: JobWatcher;
  private readonly telemetry: EnqueueTelemetry;

  constructor(private readonly context: Context) {
    this.prefix = queueIdPrefix(context.idPrefix);
    this.telemetry = new EnqueueTelemetry(context.telemetry);
    this.watcher = new JobWatcher({ client: context.client.workflow, openRunsOnly: context.openRuns });
  }

  private workflowIdOf(key: unknown): string {
    return this.prefix + checkResourceId('key', key, this.prefix);
  }

  /** Starts `key`'s queue workflow with no arguments of its own (everything comes by signal). */
  private startOptions(workflowId: string) {
    return { workflowId, taskQueue: this.context.taskQueue, args: [{}] as [QueueWorkflowInput] };
  }

  async enqueue<T>(key: string, name: string, args: readonly unknown[], options?: EnqueueOptions): Promise<Job<T>> {
    const workflowId = this.workflowIdOf(key);
    const checked = toEnqueueRequest(name, args, options);
    const span = this.telemetry.start(key, name, checked.jobId);
    const request = { ...checked, ...span.fields() };
    // A retry after a lost reply sends the signal again; the workflow ignores the job ID the second time.
    const handle = await span.around(() =>
      retryTransient(
        'enqueue',
        () =>
          this.context.client.workflow.signalWithStart<typeof queueWorkflow, [typeof request]>(QUEUE_WORKFLOW, {
            ...this.startOptions(workflowId),
            signal: enqueueSignal,
            signalArgs: [request],
          }),
        { budget: RPC_BUDGET },
      ),
    );
    return new QueueJob<T>(this.watcher, workflowId, key, request.jobId, handle.signaledRunId);
  }

  async queueStatus(key: string): Promise<QueueStatusResult> {
    const workflowId = this.workflowIdOf(key);
    try {
      const status = await retryTransient(
        'queueStatus',
        () => this.context.openRuns.getHandle(workflowId).query(queueStatusQuery),
        { budget: RPC_BUDGET },
      );
      const { running: runningJobs, ...rest } = status;
      return { key, ...rest, running: true, runningJobs };
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError || error instanceof QueryRejectedError)) throw error;
      return {
        key,
        running: false,
        active: false,
        paused: false,
        concurrency: 1,
        pending: 0,
        runningJobs: [],
        processed: 0,
        recentFailures: [],
      };
    }
  }

  async pauseQueue(key: string): Promise<void> {
    const workflowId = this.workflowIdOf(key);
    await retryTransient(
      'pauseQueue',
      () =>
        this.context.client.workflow.signalWithStart<typeof queueWorkflow, []>(QUEUE_WORKFLOW, {
          ...this.startOptions(workflowId),
          signal: pauseSignal,
          signalArgs: [],
        }),
      { budget: RPC_BUDGET },
    );
  }

  async resumeQueue(key: string): Promise<void> {
    const handle = this.context.client.workflow.getHandle(this.workflowIdOf(key));
    try {
      // A plain signal: resuming a key with no workflow must not start one.
      await retryTransient('resumeQueue', () => handle.signal(resumeSignal), { budget: RPC_BUDGET });
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    }
  }
}
