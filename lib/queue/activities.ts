import { AsyncLocalStorage } from 'node:async_hooks';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { failureTypes } from '../errors.js';
import { Telemetry } from '../telemetry.js';
import { RUN_JOB_ACTIVITY, type RunJobInput } from '../workflows/queue-core.js';
import { JobTelemetry } from './telemetry.js';

export { RUN_JOB_ACTIVITY, type RunJobInput } from '../workflows/queue-core.js';

/**
 * How often a running job tells the server it is alive, after its first second. The server's answer is how a cancel
 * reaches the job; the worker sends at most one heartbeat per throttle interval (`createWorker` makes it 1 s).
 */
const HEARTBEAT_EVERY = 1_000;

/** What a job's handler can learn about the job it runs, from `currentJob()`. */
export interface JobContext {
  readonly jobId: string;
  /** The job's name (its handler's key in `jobs`). */
  readonly name: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /**
   * Aborted when the job is cancelled (reason: a `CancelledFailure`), and when the worker shuts down or the attempt
   * times out. A handler that rejects after a cancel ends the job as cancelled; one that returns anyway succeeds.
   */
  readonly signal: AbortSignal;
}

const jobStorage = new AsyncLocalStorage<JobContext>();

/**
 * The job the calling handler runs: call it from a job handler (or anything it calls) on a worker made with
 * `createWorker`. Throws a `TypeError` outside a job.
 */
export function currentJob(): JobContext {
  const job = jobStorage.getStore();
  if (!job) throw new TypeError('currentJob() was called outside a queue job handler');
  return job;
}

/** Heartbeats while a long job runs (local activities learn of a cancel without them). */
function keepAlive(context: Context): () => void {
  if (context.info.isLocal) return () => undefined;
  let interval: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    context.heartbeat();
    interval = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY);
  }, HEARTBEAT_EVERY);
  return () => {
    clearTimeout(first);
    clearInterval(interval);
  };
}

/**
 * Whether the server stopped waiting for this attempt before it ended: it timed out. The worker learns that from the
 * answer to a heartbeat (the attempt is no longer found) or from the SDK's own timer.
 */
function timedOut(context: Context): boolean {
  const details = context.cancellationDetails;
  return details !== undefined && (details.timedOut || details.notFound);
}

/** A queue job handler: receives the job's arguments; its return value becomes the job's result. */
export type JobHandler = (...args: never[]) => unknown;
export type JobHandlers = Readonly<Record<string, JobHandler>>;

/**
 * Re-throws a handler's error unchanged in type, message, retryability and stack, with the attempt number as its
 * first detail: the queue workflow only sees the last failure and records how many attempts the job took.
 */
function withAttempt(error: unknown, attempt: number): unknown {
  if (error instanceof CancelledFailure) return error;
  const details = [{ attempt }];
  let failure: ApplicationFailure;
  if (error instanceof ApplicationFailure) {
    failure = ApplicationFailure.create({
      message: error.message,
      type: error.type ?? undefined,
      nonRetryable: error.nonRetryable ?? false,
      details: [...details, ...(error.details ?? [])],
      nextRetryDelay: error.nextRetryDelay ?? undefined,
      category: error.category ?? undefined,
      cause: error.cause instanceof Error ? error.cause : undefined,
    });
  } else if (error instanceof Error) {
    failure = ApplicationFailure.create({
      message: error.message,
      type: error.name,
      details,
      cause: error.cause instanceof Error ? error.cause : undefined,
    });
  } else {
    failure = ApplicationFailure.create({ message: String(error), type: 'Error', details });
  }
  if (error instanceof Error && error.stack !== undefined) failure.stack = error.stack;
  return failure;
}

/** The handler registered as `name`, or a non-retryable failure naming the ones that are. */
function handlerOf(jobs: JobHandlers, name: string, attempt: number): (...args: unknown[]) => unknown {
  const handler = Object.hasOwn(jobs, name) ? jobs[name] : undefined;
  if (!handler) {
    throw ApplicationFailure.create({
      type: failureTypes.unknownJob,
      message: `No handler is registered for job \`${name}\` on this worker (registered: ${Object.keys(jobs).join(', ') || 'none'})`,
      nonRetryable: true,
      details: [{ attempt }],
    });
  }
  return handler as (...args: unknown[]) => unknown;
}

/**
 * The activity that runs the given queue jobs (`createActivities` in lib/worker.ts adds the request activities),
 * reporting each attempt to `telemetry`.
 */
export function createJobActivities(
  jobs: JobHandlers,
  telemetry: Telemetry = Telemetry.create(),
): Record<string, (input: RunJobInput) => Promise<unknown>> {
  for (const [name, handler] of Object.entries(jobs)) {
    if (typeof handler !== 'function')
      throw new TypeError(`Expected job \`${name}\` to be a function, got ${typeof handler}`);
  }
  const instruments = new JobTelemetry(telemetry);
  return {
    async [RUN_JOB_ACTIVITY](input: RunJobInput) {
      const { jobId = '', name, args } = input;
      const context = Context.current();
      const { attempt, workflowExecution, retryPolicy } = context.info;
      const handler = handlerOf(jobs, name, attempt);
      const workflowId = workflowExecution?.workflowId ?? '';
      const { maximumAttempts, nonRetryableErrorTypes } = retryPolicy ?? {};
      const run = instruments.start(input, { attempt, workflowId, maximumAttempts, nonRetryableErrorTypes });
      const stop = keepAlive(context);
      const job: JobContext = { jobId, name, attempt, signal: context.cancellationSignal };
      let result: unknown;
      try {
        result = await run.run(() => jobStorage.run(job, () => handler(...args)));
      } catch (error) {
        // Whatever a cancelled handler rejects with (an AbortError, say), the job ends as cancelled, not failed.
        if (context.cancellationDetails?.cancelRequested) {
          run.cancelled();
          throw context.cancellationSignal.reason;
        }
        const failure = withAttempt(error, attempt);
        if (timedOut(context)) run.timedOut();
        else run.failed(failure);
        throw failure;
      } finally {
        stop();
      }
      // A handler that returns after its attempt timed out returns to no one: the server dropped the attempt.
      if (timedOut(context)) run.timedOut();
      else run.succeeded();
      return result;
    },
  };
}
