import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { failureTypes } from '../errors.js';
import { Telemetry } from '../telemetry.js';
import { RUN_JOB_ACTIVITY, type RunJobInput } from '../workflows/queue-core.js';
import { JobTelemetry } from './telemetry.js';

export { RUN_JOB_ACTIVITY, type RunJobInput } from '../workflows/queue-core.js';

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
      const { name, args } = input;
      const { attempt, workflowExecution, retryPolicy } = Context.current().info;
      const handler = Object.hasOwn(jobs, name) ? jobs[name] : undefined;
      if (!handler) {
        throw ApplicationFailure.create({
          type: failureTypes.unknownJob,
          message: `No handler is registered for job \`${name}\` on this worker (registered: ${Object.keys(jobs).join(', ') || 'none'})`,
          nonRetryable: true,
          details: [{ attempt }],
        });
      }
      const workflowId = workflowExecution?.workflowId ?? '';
      const { maximumAttempts, nonRetryableErrorTypes } = retryPolicy ?? {};
      const run = instruments.start(input, { attempt, workflowId, maximumAttempts, nonRetryableErrorTypes });
      let result: unknown;
      try {
        result = await run.run(() => (handler as (...args: unknown[]) => unknown)(...args));
      } catch (error) {
        const failure = withAttempt(error, attempt);
        run.failed(failure);
        throw failure;
      }
      run.succeeded();
      return result;
    },
  };
}
