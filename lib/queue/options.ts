import type { Duration } from '@temporalio/common';

/** The Temporal retry policy fields a job may set; the attempts run in place, so they never reorder the queue. */
export interface JobRetryOptions {
  /**
   * Delay before the first retry.
   * @default '1s'
   */
  readonly initialInterval?: Duration;
  /**
   * Factor the delay grows by after each retry (at least 1).
   * @default 2
   */
  readonly backoffCoefficient?: number;
  /**
   * Longest delay between two attempts.
   * @default 100 × `initialInterval`
   */
  readonly maximumInterval?: Duration;
  /**
   * How many attempts the job gets, the first one included; `Infinity` retries until it succeeds, which holds the
   * key's queue up for as long as the job keeps failing.
   * @default 5
   */
  readonly maximumAttempts?: number;
  /**
   * Error types (an `ApplicationFailure`'s `type`, else the error's `name`) that fail the job at once.
   * @default []
   */
  readonly nonRetryableErrorTypes?: readonly string[];
}

export interface EnqueueOptions {
  /**
   * The job's ID: a second enqueue with the same ID to the same key, while the job is pending or running or among the
   * key's last 1,000 finished jobs (and the key's workflow has not exited idle since), is ignored and returns a handle
   * to the same job.
   * @default a random UUID
   */
  readonly jobId?: string;
  /**
   * Retry policy of the job's attempts.
   * @default { maximumAttempts: 5 } with exponential backoff from 1 s
   */
  readonly retry?: JobRetryOptions;
  /**
   * Time limit of one attempt. It is also how long a job on a worker that died waits before its retry starts.
   * @default '1m'
   */
  readonly timeout?: Duration;
  /**
   * How many of the key's jobs may run at once, started in FIFO order. The job that finds the key's queue empty sets
   * it; while the queue is busy (jobs pending or running), a different value is ignored and the running setting wins,
   * so give every job of a key the same value.
   * @default 1
   */
  readonly concurrency?: number;
  /**
   * Run the job as a Temporal local activity, for short jobs: the worker that runs the key's workflow runs the job
   * and records its result when it completes its workflow task, so a job skips the two trips through the server's
   * task queues that a normal job takes (several times more jobs a second on one key; see docs/benchmarks.md). The
   * price:
   * - **Keep it well under the workflow task timeout (10 s).** While a key's local jobs run, its workflow task stays
   *   open (renewed every 8 s): the key's `enqueue`, `pauseQueue` and `resumeQueue` signals and its `status()`,
   *   `result()` and `queueStatus()` queries wait until it completes, and more than 100 signals to the key in that
   *   time fail the task, so the local jobs run since its last completion run again.
   * - **No heartbeats** (`Context.heartbeat()` does nothing), and a job on a worker that dies is retried only after
   *   the workflow task timeout, by the worker that takes over the key's workflow.
   * - **At least once, even with `maximumAttempts: 1`**: a failed or timed-out workflow task runs it again.
   * - **Retries wait in the worker** while the backoff is under a minute (the workflow task stays open meanwhile);
   *   a longer backoff becomes a server timer.
   * @default false
   */
  readonly local?: boolean;
  /**
   * Starts the job no earlier than this long after the enqueue is accepted. The queue stays FIFO: the key's later
   * jobs wait behind a delayed job. Not with `runAt`.
   * @default undefined (start as soon as the jobs ahead of it are done)
   */
  readonly delay?: Duration;
  /**
   * Starts the job no earlier than this time (a `Date`, or milliseconds since the epoch); a past time means now. The
   * key's later jobs wait behind it. Not with `delay`.
   * @default undefined
   */
  readonly runAt?: Date | number;
  /**
   * Spaces the key's job starts so that at most `max` start in any window of `per`. Like `concurrency`, the job that
   * finds the key's queue empty sets it (or clears it, by leaving it out) for as long as the queue stays busy.
   * @default undefined (no limit)
   */
  readonly rateLimit?: RateLimitOptions;
}

export interface RateLimitOptions {
  /** How many job starts a window may hold: an integer from 1 to 1,000. */
  readonly max: number;
  /** The window's length, such as `'1m'`. */
  readonly per: Duration;
}

export interface CancelJobOptions {
  /**
   * Why, kept with the job and carried by the `JobCancelledError` its `result()` rejects with (at most 500 characters).
   * @default undefined
   */
  readonly reason?: string;
  /**
   * Stops waiting for the answer, rejecting with `signal.reason`; a cancel already sent still takes effect.
   * @default undefined
   */
  readonly signal?: AbortSignal;
}

export interface JobResultOptions {
  /**
   * Stops waiting, rejecting with `signal.reason`; the job itself is not affected.
   * @default undefined
   */
  readonly signal?: AbortSignal;
}
