import {
  QueryRejectedError,
  WorkflowContinuedAsNewError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type WorkflowClient,
} from '@temporalio/client';
import { JobCancelledError, JobFailedError, JobNotFoundError } from '../errors.js';
import { optionalSignal } from '../options.js';
import { retryTransient, type RetryOptions } from '../rpc.js';
import { jobStatesQuery } from '../workflows/definitions.js';
import type { JobView } from '../workflows/queue-core.js';
import type { queueWorkflow } from '../workflows/queue-workflow.js';
import type { CancelJobOptions, JobResultOptions } from './options.js';

/**
 * Where a job stands: `pending` with the number of jobs ahead of it (0: next to start) and its `runAt` if it was
 * delayed, `running` (`cancelRequested` once a cancel reached it), `succeeded`, `failed` for good with its last error
 * and attempt count, `cancelled`, or `unknown` (never enqueued, past the retention bound, or its key's workflow was
 * terminated).
 */
export type JobStatus =
  | { readonly state: 'pending'; readonly position: number; readonly runAt?: Date }
  | { readonly state: 'running'; readonly cancelRequested?: true }
  | { readonly state: 'succeeded' }
  | { readonly state: 'failed'; readonly error: string; readonly attempts: number }
  | { readonly state: 'cancelled'; readonly reason?: string }
  | { readonly state: 'unknown' };

/** What a cancel found: `true` when the job was pending (it will never run) or running (its handler was told). */
export interface CancelResult {
  readonly cancelled: boolean;
}

/** Cancels one job of a key (the queue client's `cancelJob`). */
export type CancelJob = (key: string, jobId: string, options?: CancelJobOptions) => Promise<CancelResult>;

/** A handle to an enqueued job. */
export interface Job<T = unknown> {
  /** The job's ID (the `jobId` option, or a random one). */
  readonly id: string;
  /** The queue key it was enqueued to. */
  readonly key: string;
  /**
   * Waits for the job to finish and resolves with its handler's return value, whether the key's workflow is still
   * running, has continued-as-new or has exited. Rejects with `JobFailedError` if it failed for good, and with
   * `JobNotFoundError` once the queue no longer remembers it (past the last 1,000 finished jobs or 512 KiB of
   * results), and with `JobCancelledError` if it was cancelled. Keeps waiting through worker and server outages; pass
   * `signal` to stop.
   */
  result(options?: JobResultOptions): Promise<T>;
  /**
   * Cancels the job: a pending job leaves the queue and never runs; a running job's handler is told through
   * `currentJob().signal` and the key moves on once it settles. Resolves `{ cancelled: true }` if the job was pending
   * or running (again for a job already cancelled), `{ cancelled: false }` if it had finished or is unknown.
   */
  cancel(options?: CancelJobOptions): Promise<CancelResult>;
  /** Where the job stands now, read with a query (no history cost). */
  status(): Promise<JobStatus>;
}

/** The two clients a queue reads with. */
export interface QueueClients {
  /** For run results. */
  readonly client: WorkflowClient;
  /** Same connection, with queries rejected by closed runs, so a closed run is never replayed to answer one. */
  readonly openRunsOnly: WorkflowClient;
}

/** How long one `status()` may retry transient failures. */
const STATUS_BUDGET = 30_000;
/** Bounds of the delay between two looks at a run while jobs are awaited; it resets whenever one finishes. */
const MIN_POLL = 50;
const MAX_POLL = 1_000;

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

type RunAnswer =
  | { readonly kind: 'views'; readonly views: readonly JobView[] }
  | { readonly kind: 'moved'; readonly runId: string }
  | { readonly kind: 'gone'; readonly cause: unknown };

/**
 * What one run knows about `jobIds`: an open run answers a query; a closed run answers with what it returned (idle
 * exit), or names its successor (continue-as-new).
 */
async function askRun(
  { client, openRunsOnly }: QueueClients,
  workflowId: string,
  runId: string,
  jobIds: string[],
  retry: RetryOptions,
): Promise<RunAnswer> {
  try {
    const views = await retryTransient(
      'jobStates',
      () => openRunsOnly.getHandle(workflowId, runId).query(jobStatesQuery, jobIds),
      retry,
    );
    return { kind: 'views', views };
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { kind: 'gone', cause: error };
    if (!(error instanceof QueryRejectedError)) throw error;
  }
  try {
    const result = await retryTransient(
      'queueResult',
      () => client.result<typeof queueWorkflow>(workflowId, runId, { followRuns: false }),
      retry,
    );
    const outcomes = new Map(result.finished.map((outcome) => [outcome.jobId, outcome]));
    return { kind: 'views', views: jobIds.map((jobId) => outcomes.get(jobId) ?? { state: 'unknown' }) };
  } catch (error) {
    if (error instanceof WorkflowContinuedAsNewError) return { kind: 'moved', runId: error.newExecutionRunId };
    // Terminated, cancelled or failed: the run's memory went with it.
    if (error instanceof WorkflowFailedError || error instanceof WorkflowNotFoundError) {
      return { kind: 'gone', cause: error };
    }
    throw error;
  }
}

/** How a wait on one run ends: the job's final view, a pointer to the next run, or the run is gone. */
type Settled =
  | Exclude<JobView, { state: 'pending' | 'running' }>
  | { readonly state: 'moved'; readonly runId: string }
  | { readonly state: 'gone'; readonly cause: unknown };

interface Waiter {
  resolve(settled: Settled): void;
  reject(error: unknown): void;
}

/** One poll loop for one run: every `result()` of this process waiting on that run shares its queries. */
class RunWatch {
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Aborted when the last waiter leaves, so a loop stuck retrying an unreachable server stops. */
  private readonly idle = new AbortController();

  constructor(
    private readonly clients: QueueClients,
    private readonly workflowId: string,
    private readonly runId: string,
    private readonly onDone: () => void,
  ) {}

  add(jobId: string, signal: AbortSignal | undefined): Promise<Settled> {
    return new Promise((resolve, reject) => {
      let set = this.waiters.get(jobId);
      if (!set) this.waiters.set(jobId, (set = new Set()));
      const owner = set;
      const onAbort = () => {
        this.remove(jobId, owner, waiter);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve(settled) {
          signal?.removeEventListener('abort', onAbort);
          resolve(settled);
        },
        reject(error) {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      set.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private remove(jobId: string, set: Set<Waiter>, waiter: Waiter): void {
    set.delete(waiter);
    if (set.size === 0) this.waiters.delete(jobId);
    if (this.waiters.size === 0) {
      // Retire at once: a waiter that comes after this must start a new loop, not join one that is stopping.
      this.onDone();
      this.idle.abort();
    }
  }

  private settle(jobId: string, settled: Settled): void {
    const set = this.waiters.get(jobId);
    this.waiters.delete(jobId);
    for (const waiter of set ?? []) waiter.resolve(settled);
  }

  async run(): Promise<void> {
    const signal = this.idle.signal;
    try {
      for (let wait = MIN_POLL; this.waiters.size > 0;) {
        const jobIds = [...this.waiters.keys()];
        // Waiting is open-ended (a worker may be down for a while): only the waiters leaving ends it.
        const answer = await askRun(this.clients, this.workflowId, this.runId, jobIds, {
          signal,
          budget: Number.POSITIVE_INFINITY,
        });
        if (answer.kind !== 'views') {
          for (const jobId of jobIds)
            this.settle(
              jobId,
              answer.kind === 'moved'
                ? { state: 'moved', runId: answer.runId }
                : { state: 'gone', cause: answer.cause },
            );
          continue;
        }
        let progressed = false;
        jobIds.forEach((jobId, index) => {
          const view = answer.views[index] ?? { state: 'unknown' };
          if (view.state === 'pending' || view.state === 'running') return;
          this.settle(jobId, view);
          progressed = true;
        });
        wait = progressed ? MIN_POLL : Math.min(MAX_POLL, wait * 1.5);
        if (this.waiters.size > 0) await delay(wait * (0.75 + Math.random() / 2), signal);
      }
    } catch (error) {
      if (!signal.aborted) for (const set of this.waiters.values()) for (const waiter of set) waiter.reject(error);
      this.waiters.clear();
    } finally {
      // No await between the last emptiness check and this: a waiter added later starts a new loop.
      this.onDone();
    }
  }
}

/** Per coordinator: shares one poll loop per queue run among all the jobs awaited on it. */
export class JobWatcher {
  private readonly runs = new Map<string, RunWatch>();

  constructor(readonly clients: QueueClients) {}

  wait(workflowId: string, runId: string, jobId: string, signal: AbortSignal | undefined): Promise<Settled> {
    const id = `${runId}/${workflowId}`;
    let watch = this.runs.get(id);
    if (!watch) {
      const created: RunWatch = new RunWatch(this.clients, workflowId, runId, () => {
        if (this.runs.get(id) === created) this.runs.delete(id);
      });
      watch = created;
      this.runs.set(id, watch);
      const added = watch.add(jobId, signal);
      void watch.run();
      return added;
    }
    return watch.add(jobId, signal);
  }
}

export class QueueJob<T> implements Job<T> {
  /** The run to ask first: the one that accepted the enqueue, then its continue-as-new successors. */
  private runId: string;

  constructor(
    private readonly watcher: JobWatcher,
    private readonly cancelJob: CancelJob,
    private readonly workflowId: string,
    readonly key: string,
    readonly id: string,
    signaledRunId: string,
  ) {
    this.runId = signaledRunId;
  }

  cancel(options?: CancelJobOptions): Promise<CancelResult> {
    return this.cancelJob(this.key, this.id, options);
  }

  async result(options: JobResultOptions = {}): Promise<T> {
    if (typeof options !== 'object' || options === null) throw new TypeError('Expected `options` to be an object');
    const signal = optionalSignal('signal', options.signal);
    signal?.throwIfAborted();
    for (;;) {
      const settled = await this.watcher.wait(this.workflowId, this.runId, this.id, signal);
      switch (settled.state) {
        case 'moved':
          this.runId = settled.runId;
          break;
        case 'succeeded':
          if (settled.retained) return settled.result as T;
          throw new JobNotFoundError(this.key, this.id);
        case 'failed':
          throw new JobFailedError(this.key, this.id, settled.attempts, settled.error);
        case 'cancelled':
          throw new JobCancelledError(this.key, this.id, settled.reason);
        case 'unknown':
          throw new JobNotFoundError(this.key, this.id);
        case 'gone':
          throw new JobNotFoundError(this.key, this.id, { cause: settled.cause });
      }
    }
  }

  async status(): Promise<JobStatus> {
    for (;;) {
      const answer = await askRun(this.watcher.clients, this.workflowId, this.runId, [this.id], {
        budget: STATUS_BUDGET,
      });
      if (answer.kind === 'moved') {
        this.runId = answer.runId;
        continue;
      }
      const view = answer.kind === 'gone' ? { state: 'unknown' as const } : (answer.views[0] ?? { state: 'unknown' });
      switch (view.state) {
        case 'succeeded':
          return { state: 'succeeded' };
        case 'failed':
          return { state: 'failed', error: view.error, attempts: view.attempts };
        case 'cancelled':
          return view.reason === undefined ? { state: 'cancelled' } : { state: 'cancelled', reason: view.reason };
        case 'pending':
          return view.runAt === undefined
            ? { state: 'pending', position: view.position }
            : { state: 'pending', position: view.position, runAt: new Date(view.runAt) };
        default:
          return view;
      }
    }
  }
}
