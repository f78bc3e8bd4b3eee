import {
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
  QueryNotRegisteredError,
  WorkflowUpdateFailedError,
  type Connection,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import pRetry from 'p-retry';
import { failureTypes, ServerUnavailableError } from './errors.js';

/** The gRPC status codes this module tells apart. */
const DEADLINE_EXCEEDED = 4;
const RESOURCE_EXHAUSTED = 8;
const FAILED_PRECONDITION = 9;
const UNAVAILABLE = 14;

// Errors that mean "the server could not take the call now": worth another try within the caller's budget.
const TRANSIENT_CODES = new Set<number>([DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE]);

function grpcCode(error: unknown): number | undefined {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** Whether `error` is a transient gRPC failure (server down, overloaded or slow). */
export function isTransient(error: unknown): boolean {
  const code = grpcCode(error);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** Whether `error` says the server could not be reached at all (rather than answered late). */
export function isUnreachable(error: unknown): boolean {
  return grpcCode(error) === UNAVAILABLE;
}

/**
 * Whether a query failed because the workflow's task is failing (its worker cannot replay the history): the run makes
 * no progress until it fails or is terminated, and a new run takes over.
 */
export function isTaskFailing(error: unknown): boolean {
  return error instanceof QueryNotRegisteredError || grpcCode(error) === FAILED_PRECONDITION;
}

/** Whether a lock workflow turned an update away for now (its task handled events): send it again. */
export function isBusy(error: unknown): error is WorkflowUpdateFailedError & { cause: ApplicationFailure } {
  return (
    error instanceof WorkflowUpdateFailedError &&
    error.cause instanceof ApplicationFailure &&
    error.cause.type === failureTypes.busy
  );
}

export interface RetryOptions {
  readonly signal?: AbortSignal | undefined;
  /** How long retries may go on, in ms. */
  readonly budget: number;
  /** Given, each call gets the budget's end as its gRPC deadline, so the gRPC layer's own retries stop there too. */
  readonly connection?: Pick<Connection, 'withDeadline'> | undefined;
  /** Which errors are worth another try. @default isTransient */
  readonly retryIf?: (error: unknown) => boolean;
}

/**
 * Runs an RPC, retrying transient failures with backoff (on top of the gRPC layer's own retries) within `budget`,
 * then throws a `ServerUnavailableError` naming `operation`. Other errors pass through untouched.
 */
export async function retryTransient<T>(operation: string, fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const deadline = Date.now() + options.budget;
  const { connection, retryIf = isTransient } = options;
  const attempt = connection && Number.isFinite(deadline) ? () => connection.withDeadline(deadline, fn) : fn;
  try {
    return await pRetry(attempt, {
      retries: Number.POSITIVE_INFINITY,
      maxRetryTime: options.budget,
      minTimeout: 100,
      maxTimeout: 2_000,
      signal: options.signal,
      shouldRetry: ({ error }) => retryIf(error),
    });
  } catch (error) {
    if (retryIf(error)) {
      throw new ServerUnavailableError(`Temporal server unavailable: ${operation} failed`, { cause: error });
    }
    throw error;
  }
}

/** Calls to one workflow that its limits turn away while it is busy: queries and updates. */
const PER_WORKFLOW_METHODS = new Set(
  ['QueryWorkflow', 'UpdateWorkflowExecution', 'PollWorkflowExecutionUpdate'].map(
    (method) => `/temporal.api.workflowservice.v1.WorkflowService/${method}`,
  ),
);
/** Calls refused by a busy workflow are retried after about 10 ms, growing to at most this, up to 60 attempts. */
const MAX_BUSY_RETRY_DELAY = 200;

/**
 * gRPC interceptors for a `Connection` used by coordination clients: the Temporal SDK's default retries, except for a
 * query or update of one workflow turned away with RESOURCE_EXHAUSTED. A server buffers one query per workflow that
 * has a task in flight (`history.MaxBufferedQueryCount`) and admits 10 in-flight updates, and a busy lock workflow
 * nearly always has a task in flight, so waiters' position polls are often turned away; the buffer frees within one
 * workflow task, so they are retried after milliseconds rather than the SDK's one second and more.
 */
export function retryInterceptors(): ReturnType<typeof makeGrpcRetryInterceptor>[] {
  const defaults = defaultGrpcRetryOptions();
  const fallback = makeGrpcRetryInterceptor(defaults);
  const perWorkflow = makeGrpcRetryInterceptor({
    delayFunction: (attempt, status) =>
      status.code === RESOURCE_EXHAUSTED
        ? Math.min(MAX_BUSY_RETRY_DELAY, 10 * 1.5 ** attempt) * (0.5 + Math.random())
        : defaults.delayFunction(attempt, status),
    retryableDecider: (attempt, status) =>
      status.code === RESOURCE_EXHAUSTED ? attempt < 60 : defaults.retryableDecider(attempt, status),
  });
  return [
    (options, nextCall) =>
      (PER_WORKFLOW_METHODS.has(options.method_definition.path) ? perWorkflow : fallback)(options, nextCall),
  ];
}
