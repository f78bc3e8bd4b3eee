import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  cancelJobSignal,
  enqueueSignal,
  jobStatesQuery,
  pauseSignal,
  queueStatusQuery,
  resumeSignal,
} from './definitions.js';
import {
  QueueCore,
  RUN_JOB_ACTIVITY,
  queueLimits,
  type EnqueueRequest,
  type QueueResult,
  type QueueSnapshot,
  type RunJobInput,
} from './queue-core.js';

/** Fixed protocol timings, shared with the client. */
export const queueTimings = {
  /** A drained queue's workflow waits this long for a new job before it completes. */
  linger: 2_000,
} as const;

/** Continue-as-new well before the server's 10,000 signals per run (not part of its own suggestion). */
const MAX_SIGNALS_PER_RUN = 5_000;
/**
 * Continue-as-new carries every pending job, so it waits until they take at most this much; the rest of the budget
 * is for the dedup window, retained results and failures, all under the server's 2 MiB payload limit.
 */
const PENDING_CARRY_BUDGET = 1024 * 1024;
const CARRY_BUDGET = 1536 * 1024;

export interface QueueWorkflowInput {
  /** State carried over by continue-as-new; absent for a fresh run. */
  readonly snapshot?: QueueSnapshot;
}

type RunJob = (input: RunJobInput) => Promise<unknown>;
type JobActivities = Record<typeof RUN_JOB_ACTIVITY, RunJob>;

/**
 * The activity that runs `job`: a local one (run by the worker that holds the workflow task, its result recorded with
 * the task's completion, so no trip through the server's task queues) when the job asked for it, else a normal one.
 */
function jobActivity(job: EnqueueRequest): RunJob {
  const { maximumAttempts, nonRetryableErrorTypes, ...retry } = job.retry;
  const options = {
    startToCloseTimeout: job.timeout,
    // A cancelled job's handler is told (the activity learns it from a heartbeat) and the key waits until it settles.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      ...retry,
      maximumAttempts: maximumAttempts === 0 ? Number.POSITIVE_INFINITY : maximumAttempts,
      ...(nonRetryableErrorTypes ? { nonRetryableErrorTypes: [...nonRetryableErrorTypes] } : {}),
    },
  };
  const activities =
    job.local === true ? proxyLocalActivities<JobActivities>(options) : proxyActivities<JobActivities>(options);
  return activities[RUN_JOB_ACTIVITY];
}

function runJob(job: EnqueueRequest): Promise<unknown> {
  const { jobId, name, args, telemetry } = job;
  return jobActivity(job)({ jobId, name, args, ...(telemetry && { telemetry }) });
}

/**
 * The last attempt's message, as the handler threw it (the activity wraps it with the attempt number). A normal
 * activity's failure comes wrapped in an ActivityFailure, a local activity's as it is.
 */
function failureMessage(error: unknown, job: EnqueueRequest): string {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof TimeoutFailure) return `The attempt timed out after ${job.timeout} ms`;
  return cause instanceof Error ? cause.message : String(cause);
}

function attemptsOf(error: unknown, job: EnqueueRequest): number {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  const reported =
    cause instanceof ApplicationFailure ? (cause.details?.[0] as { attempt?: unknown } | undefined) : undefined;
  if (typeof reported?.attempt === 'number') return reported.attempt;
  // The last attempt timed out, so it could not report: with retries exhausted, that was the last one allowed.
  return job.retry.maximumAttempts > 0 ? job.retry.maximumAttempts : 1;
}

/** The running jobs' cancellation scopes, so that a cancel can reach a running job's activity. */
class RunningJobs {
  private readonly scopes = new Map<string, CancellationScope>();

  constructor(
    private readonly core: QueueCore,
    private readonly changed: () => void,
  ) {}

  start(job: EnqueueRequest): void {
    const scope = new CancellationScope();
    this.scopes.set(job.jobId, scope);
    // A policy the SDK refuses throws synchronously: as a rejection it fails that job instead of the workflow task.
    scope
      .run(() => new Promise((resolve) => resolve(runJob(job))))
      .then(
        (result) => this.core.succeed(job.jobId, result),
        (error: unknown) => {
          if (isCancellation(error)) this.core.stopped(job.jobId);
          else this.core.fail(job.jobId, failureMessage(error, job), attemptsOf(error, job), Date.now());
        },
      )
      .finally(() => {
        this.scopes.delete(job.jobId);
        this.changed();
      });
  }

  cancel(jobId: string): void {
    this.scopes.get(jobId)?.cancel();
  }
}

/** Registers the queue's signal and query handlers; `changed` is called on every signal. Returns the signal count. */
function handleRequests(core: QueueCore, jobs: RunningJobs, changed: () => void): () => number {
  let signals = 0;
  const on = (apply: () => void) => {
    signals++;
    changed();
    apply();
  };
  setHandler(enqueueSignal, (job) => on(() => core.enqueue(job)));
  setHandler(cancelJobSignal, (request) =>
    on(() => {
      if (core.cancel(request) === 'running') jobs.cancel(request.jobId);
    }),
  );
  setHandler(pauseSignal, () => on(() => core.pause()));
  setHandler(resumeSignal, () => on(() => core.resume()));
  setHandler(jobStatesQuery, (jobIds) => jobIds.map((jobId) => core.jobState(jobId)));
  setHandler(queueStatusQuery, () => core.status());
  return () => signals;
}

/** Waits for a signal or a job's end, or until `wakeAt` (a delayed job's time, the rate limit's next start). */
async function changeOrWake(changed: () => boolean, wakeAt: number | undefined): Promise<void> {
  if (wakeAt === undefined) await condition(changed);
  else await condition(changed, Math.max(1, wakeAt - Date.now()));
}

/**
 * One run per queue key: runs the key's jobs in FIFO order as activities (up to `concurrency` at once, none before
 * its `runAt`, starts spaced by the rate limit), and completes once it has been drained for
 * {@link queueTimings.linger}, returning the outcomes it still remembers.
 */
export async function queueWorkflow(input: QueueWorkflowInput = {}): Promise<QueueResult> {
  const core = new QueueCore(input.snapshot ?? QueueCore.empty(), queueLimits);
  let changes = 0;
  const jobs = new RunningJobs(core, () => changes++);
  const signals = handleRequests(core, jobs, () => changes++);

  for (;;) {
    const mustHandOver = workflowInfo().continueAsNewSuggested || signals() >= MAX_SIGNALS_PER_RUN;
    // A backlog too big to carry keeps draining in this run until it fits (history has room well past the suggestion).
    if (mustHandOver && core.pendingBytes() <= PENDING_CARRY_BUDGET) {
      // Activities cannot move to the next run: start nothing more, let the running jobs finish for good.
      await condition(() => core.runningCount === 0);
      await condition(allHandlersFinished);
      // Signals that arrived meanwhile are already in `core`; one that races the command is redelivered to this run.
      core.trim(CARRY_BUDGET);
      await continueAsNew<typeof queueWorkflow>({ snapshot: core.snapshot() });
    }
    for (let job = core.next(Date.now()); job; job = core.next(Date.now())) jobs.start(job);
    const seen = changes;
    if (core.canExit()) {
      const woken = await condition(() => changes !== seen, queueTimings.linger);
      // Re-checked in the same activation as the return: a job that raced the exit keeps the run alive.
      if (!woken && core.canExit() && allHandlersFinished()) {
        core.trim(CARRY_BUDGET);
        return core.result();
      }
      continue;
    }
    await changeOrWake(() => changes !== seen, core.wakeAt(Date.now()));
  }
}
