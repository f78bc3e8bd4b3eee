import { QueryRejectedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Context } from '../context.js';
import { checkResourceId, queueIdPrefix } from '../ids.js';
import { retryTransient } from '../rpc.js';
import { CallOrder } from '../workflows/call-order.js';
import {
  cancelJobSignal,
  enqueueSignal,
  jobStatesQuery,
  pauseSignal,
  queueStatusQuery,
  resumeSignal,
} from '../workflows/definitions.js';
import type { JobView, QueueStatus, RateLimit } from '../workflows/queue-core.js';
import type { QueueWorkflowInput, queueWorkflow } from '../workflows/queue-workflow.js';
import { JobWatcher, QueueJob, type CancelJob, type CancelResult, type Job } from './job.js';
import type { CancelJobOptions, EnqueueOptions } from './options.js';
import { EnqueueTelemetry } from './telemetry.js';
import { toCancelRequest, toEnqueueRequest } from './validate.js';

export type { CancelResult, Job, JobStatus } from './job.js';
export type { JobFailure } from '../workflows/queue-core.js';

/** How long one call may retry transient server failures before it throws `ServerUnavailableError`. */
const RPC_BUDGET = 30_000;
const QUEUE_WORKFLOW = 'queueWorkflow';

export interface QueueStatusResult extends Omit<QueueStatus, 'running' | 'cancelled' | 'delayed' | 'rateLimit'> {
  readonly key: string;
  /** Jobs cancelled since the key's workflow started. */
  readonly cancelled: number;
  /** Pending jobs waiting for their `runAt` (the first 100), in queue order. */
  readonly delayed: readonly { readonly jobId: string; readonly runAt: Date }[];
  /** The key's rate limit (`per` in ms), if the job that found it idle set one. */
  readonly rateLimit?: RateLimit;
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
   * first: a `TypeError` or `RangeError` naming the bad argument means nothing was sent. Calls of this coordinator for
   * one key take effect in call order, awaited or not (each is sent once the one before it is accepted).
   */
  enqueue<T = unknown>(key: string, name: string, args: readonly unknown[], options?: EnqueueOptions): Promise<Job<T>>;
  /** Cancels one of `key`'s jobs by ID, as `job.cancel()` does. */
  cancelJob(key: string, jobId: string, options?: CancelJobOptions): Promise<CancelResult>;
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
    cancelJob: (key, jobId, options) => queues.cancelJob(key, jobId, options),
    queueStatus: (key) => queues.queueStatus(key),
    pauseQueue: (key) => queues.pauseQueue(key),
    resumeQueue: (key) => queues.resumeQueue(key),
  };
}

/** Whether a job's state, read right after a cancel reached its run, shows the cancel took it pending or running. */
function cancelTook(view: JobView | undefined): boolean {
  switch (view?.state) {
    case 'cancelled':
      return true;
    case 'running':
    case 'succeeded':
    case 'failed':
      return view.cancelRequested === true;
    default:
      return false;
  }
}

class QueueClient {
  private readonly prefix: string;
  private readonly watcher: JobWatcher;
  /** One chain per queue workflow: one process's requests to a key take effect in call order. */
  private readonly order = new CallOrder();
  private readonly telemetry: EnqueueTelemetry;
  /** What `job.cancel()` calls. */
  private readonly cancel: CancelJob = (key, jobId, options) => this.cancelJob(key, jobId, options);

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
      this.order.run(workflowId, () =>
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
      ),
    );
    return new QueueJob<T>(this.watcher, this.cancel, workflowId, key, request.jobId, handle.signaledRunId);
  }

  async cancelJob(key: string, jobId: string, options?: CancelJobOptions): Promise<CancelResult> {
    const workflowId = this.workflowIdOf(key);
    const { request, signal } = toCancelRequest(jobId, options);
    signal?.throwIfAborted();
    return this.order.run(workflowId, async () => {
      // Aborted while earlier requests to the key went out: nothing is sent.
      signal?.throwIfAborted();
      const handle = this.context.openRuns.getHandle(workflowId);
      try {
        // A plain signal: a key with no workflow has no pending or running job, and must not get a workflow.
        await retryTransient('cancelJob', () => handle.signal(cancelJobSignal, request), {
          budget: RPC_BUDGET,
          ...(signal ? { signal } : {}),
        });
        // The server answers a query after the workflow task that takes the signal, so this reads its effect.
        const [view] = await retryTransient('cancelJob', () => handle.query(jobStatesQuery, [request.jobId]), {
          budget: RPC_BUDGET,
          ...(signal ? { signal } : {}),
        });
        const cancelled = cancelTook(view);
        if (cancelled) this.telemetry.cancelled(key);
        return { cancelled };
      } catch (error) {
        if (error instanceof WorkflowNotFoundError || error instanceof QueryRejectedError) return { cancelled: false };
        throw error;
      }
    });
  }

  async queueStatus(key: string): Promise<QueueStatusResult> {
    const workflowId = this.workflowIdOf(key);
    try {
      const status = await retryTransient(
        'queueStatus',
        () => this.context.openRuns.getHandle(workflowId).query(queueStatusQuery),
        { budget: RPC_BUDGET },
      );
      const { running: runningJobs, cancelled = 0, delayed = [], ...rest } = status;
      return {
        key,
        ...rest,
        running: true,
        runningJobs,
        cancelled,
        delayed: delayed.map(({ jobId, runAt }) => ({ jobId, runAt: new Date(runAt) })),
      };
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
        cancelled: 0,
        delayed: [],
        recentFailures: [],
      };
    }
  }

  async pauseQueue(key: string): Promise<void> {
    const workflowId = this.workflowIdOf(key);
    await this.order.run(workflowId, () =>
      retryTransient(
        'pauseQueue',
        () =>
          this.context.client.workflow.signalWithStart<typeof queueWorkflow, []>(QUEUE_WORKFLOW, {
            ...this.startOptions(workflowId),
            signal: pauseSignal,
            signalArgs: [],
          }),
        { budget: RPC_BUDGET },
      ),
    );
  }

  async resumeQueue(key: string): Promise<void> {
    const workflowId = this.workflowIdOf(key);
    const handle = this.context.client.workflow.getHandle(workflowId);
    try {
      // A plain signal: resuming a key with no workflow must not start one.
      await this.order.run(workflowId, () =>
        retryTransient('resumeQueue', () => handle.signal(resumeSignal), { budget: RPC_BUDGET }),
      );
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    }
  }
}
