// Everything `enqueue` is given is checked here, before any RPC: a bad job is never partially enqueued.
import { randomUUID } from 'node:crypto';
import { optionalSignal, positiveDuration, positiveInteger } from '../options.js';
import {
  queueLimits,
  type CancelRequest,
  type EnqueueRequest,
  type JobRetryPolicy,
  type RateLimit,
} from '../workflows/queue-core.js';
import type { CancelJobOptions, EnqueueOptions, JobRetryOptions, RateLimitOptions } from './options.js';

const DEFAULT_TIMEOUT = 60_000;
const DEFAULT_MAXIMUM_ATTEMPTS = 5;

const enqueueOptionNames = new Set([
  'jobId',
  'retry',
  'timeout',
  'concurrency',
  'delay',
  'runAt',
  'rateLimit',
  'local',
]);
const rateLimitOptionNames = new Set(['max', 'per']);
const cancelOptionNames = new Set(['reason', 'signal']);
/** Most starts a rate limit's window may hold (the workflow remembers that many start times). */
const MAX_RATE = 1_000;
const retryOptionNames = new Set([
  'initialInterval',
  'backoffCoefficient',
  'maximumInterval',
  'maximumAttempts',
  'nonRetryableErrorTypes',
]);

function show(value: unknown): string {
  return `\`${String(value)}\` (${typeof value})`;
}

function checkKnownOptions(name: string, value: unknown, known: ReadonlySet<string>, prefix: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`Expected \`${name}\` to be an object, got ${show(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new TypeError(`Unknown option \`${prefix}${key}\``);
  }
}

function nonEmptyString(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`Expected \`${name}\` to be a string, got ${show(value)}`);
  if (value.length === 0) throw new TypeError(`Expected \`${name}\` to be a non-empty string`);
  return value;
}

/** Why `value` would not come back the same from JSON, or `undefined` if it would. */
function jsonProblem(value: unknown, path: string, inArray: boolean, ancestors: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `\`${path}\` is ${value}, which JSON cannot represent`;
    case 'undefined':
      // Dropped from objects, as JSON does; in an array it would silently become null.
      return inArray ? `\`${path}\` is undefined, which JSON turns into null` : undefined;
    case 'function':
    case 'symbol':
    case 'bigint':
      return `\`${path}\` is a ${typeof value}, which JSON cannot represent`;
  }
  if (value === null) return undefined;
  const object = value as object;
  if (ancestors.has(object)) return `\`${path}\` is a circular reference`;
  const toJSON = (object as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return jsonProblem(toJSON.call(object), path, inArray, ancestors);
  ancestors.add(object);
  try {
    if (Array.isArray(object)) {
      for (const [index, item] of object.entries()) {
        const problem = jsonProblem(item, `${path}[${index}]`, true, ancestors);
        if (problem) return problem;
      }
      return undefined;
    }
    const prototype = Object.getPrototypeOf(object) as unknown;
    if (prototype !== Object.prototype && prototype !== null) {
      const kind = (object.constructor as { name?: string } | undefined)?.name ?? 'class instance';
      return `\`${path}\` is a ${kind}, which JSON cannot represent (use a plain object or array)`;
    }
    for (const [key, item] of Object.entries(object)) {
      const problem = jsonProblem(item, `${path}.${key}`, false, ancestors);
      if (problem) return problem;
    }
    return undefined;
  } finally {
    ancestors.delete(object);
  }
}

/** Throws unless `args` is an array of JSON values within the size cap. */
export function checkArgs(args: unknown): readonly unknown[] {
  if (!Array.isArray(args)) throw new TypeError(`Expected \`args\` to be an array, got ${show(args)}`);
  const problem = jsonProblem(args, 'args', false, new Set());
  if (problem) throw new TypeError(`Expected \`args\` to be JSON-serialisable: ${problem}`);
  const bytes = Buffer.byteLength(JSON.stringify(args));
  if (bytes > queueLimits.maxArgsBytes) {
    throw new RangeError(
      `Expected \`args\` to be at most ${queueLimits.maxArgsBytes / 1024} KiB once serialised, got ${bytes} bytes`,
    );
  }
  return args;
}

function checkRetry(retry: unknown): JobRetryPolicy {
  if (retry === undefined) return { maximumAttempts: DEFAULT_MAXIMUM_ATTEMPTS };
  checkKnownOptions('retry', retry, retryOptionNames, 'retry.');
  const options = retry as JobRetryOptions;
  const policy: { -readonly [K in keyof JobRetryPolicy]: JobRetryPolicy[K] } = {
    maximumAttempts: DEFAULT_MAXIMUM_ATTEMPTS,
  };
  if (options.initialInterval !== undefined) {
    policy.initialInterval = positiveDuration('retry.initialInterval', options.initialInterval);
  }
  if (options.maximumInterval !== undefined) {
    policy.maximumInterval = positiveDuration('retry.maximumInterval', options.maximumInterval);
  }
  if (options.backoffCoefficient !== undefined) {
    const coefficient = options.backoffCoefficient;
    if (typeof coefficient !== 'number' || !Number.isFinite(coefficient) || coefficient < 1) {
      throw new RangeError(
        `Expected \`retry.backoffCoefficient\` to be a number of at least 1, got ${show(coefficient)}`,
      );
    }
    policy.backoffCoefficient = coefficient;
  }
  if (options.maximumAttempts !== undefined) {
    // Infinity does not survive JSON; 0 is Temporal's own "unlimited".
    policy.maximumAttempts =
      options.maximumAttempts === Number.POSITIVE_INFINITY
        ? 0
        : positiveInteger('retry.maximumAttempts', options.maximumAttempts);
  }
  if (policy.maximumInterval !== undefined && policy.maximumInterval < (policy.initialInterval ?? 1_000)) {
    throw new RangeError('Expected `retry.maximumInterval` to be at least `retry.initialInterval` (default 1 s)');
  }
  if (options.nonRetryableErrorTypes !== undefined) {
    const types: unknown = options.nonRetryableErrorTypes;
    if (!Array.isArray(types) || !types.every((type) => typeof type === 'string')) {
      throw new TypeError(`Expected \`retry.nonRetryableErrorTypes\` to be an array of strings, got ${show(types)}`);
    }
    policy.nonRetryableErrorTypes = [...(types as string[])];
  }
  return policy;
}

function checkJobId(jobId: unknown): string {
  nonEmptyString('jobId', jobId);
  const id = jobId as string;
  if (id.length > queueLimits.maxJobIdLength) {
    throw new RangeError(`Expected \`jobId\` to be at most ${queueLimits.maxJobIdLength} characters, got ${id.length}`);
  }
  return id;
}

function checkRateLimit(rateLimit: unknown): RateLimit {
  checkKnownOptions('rateLimit', rateLimit, rateLimitOptionNames, 'rateLimit.');
  const { max, per } = rateLimit as RateLimitOptions;
  positiveInteger('rateLimit.max', max);
  if (max > MAX_RATE) throw new RangeError(`Expected \`rateLimit.max\` to be at most ${MAX_RATE}, got ${max}`);
  if (per === undefined) throw new TypeError("Expected `rateLimit.per` to be a duration such as '1m'");
  return { max, per: positiveDuration('rateLimit.per', per) };
}

/** When a job may start, from `delay` or `runAt` (ms since the epoch), or `undefined` for as soon as possible. */
function checkStartTime(delay: unknown, runAt: unknown, now: number): number | undefined {
  if (delay !== undefined && runAt !== undefined) {
    throw new TypeError('Expected at most one of `delay` and `runAt`, got both');
  }
  if (delay !== undefined) return delay === 0 ? now : now + positiveDuration('delay', delay);
  if (runAt === undefined) return undefined;
  const time = runAt instanceof Date ? runAt.getTime() : runAt;
  if (typeof time !== 'number') {
    throw new TypeError(`Expected \`runAt\` to be a Date or milliseconds since the epoch, got ${show(runAt)}`);
  }
  if (!Number.isFinite(time)) throw new RangeError(`Expected \`runAt\` to be a valid time, got ${show(runAt)}`);
  return time;
}

function checkConcurrency(concurrency: unknown): number {
  if (concurrency === undefined) return 1;
  positiveInteger('concurrency', concurrency);
  if ((concurrency as number) > queueLimits.maxConcurrency) {
    throw new RangeError(
      `Expected \`concurrency\` to be at most ${queueLimits.maxConcurrency}, got ${concurrency as number}`,
    );
  }
  return concurrency as number;
}

/** Validates a job and applies every default: the result is exactly what the enqueue signal carries. */
export function toEnqueueRequest(name: unknown, args: unknown, options: unknown, now = Date.now()): EnqueueRequest {
  nonEmptyString('name', name);
  checkArgs(args);
  if (options === undefined) options = {};
  checkKnownOptions('options', options, enqueueOptionNames, '');
  const { jobId, retry, timeout, concurrency, delay, runAt, rateLimit, local } = options as EnqueueOptions;
  const startAt = checkStartTime(delay, runAt, now);
  if (local !== undefined && typeof local !== 'boolean') {
    throw new TypeError(`Expected \`local\` to be a boolean, got ${show(local)}`);
  }
  return {
    jobId: jobId === undefined ? randomUUID() : checkJobId(jobId),
    name: name as string,
    args: args as readonly unknown[],
    retry: checkRetry(retry),
    timeout: timeout === undefined ? DEFAULT_TIMEOUT : positiveDuration('timeout', timeout),
    concurrency: checkConcurrency(concurrency),
    // Left out when unset, so a plain job's signal is what it always was.
    ...(startAt === undefined ? {} : { runAt: startAt }),
    ...(rateLimit === undefined ? {} : { rateLimit: checkRateLimit(rateLimit) }),
    ...(local === true ? { local: true } : {}),
  };
}

/** Validates a cancel: the job ID and `{ reason, signal }`. */
export function toCancelRequest(jobId: unknown, options: unknown): { request: CancelRequest; signal?: AbortSignal } {
  checkJobId(jobId);
  if (options === undefined) options = {};
  checkKnownOptions('options', options, cancelOptionNames, '');
  const { reason, signal } = options as CancelJobOptions;
  if (reason !== undefined) {
    if (typeof reason !== 'string') throw new TypeError(`Expected \`reason\` to be a string, got ${show(reason)}`);
    if (reason.length > queueLimits.errorLength) {
      throw new RangeError(
        `Expected \`reason\` to be at most ${queueLimits.errorLength} characters, got ${reason.length}`,
      );
    }
  }
  const checkedSignal = optionalSignal('signal', signal);
  return {
    request: reason === undefined ? { jobId: jobId as string } : { jobId: jobId as string, reason },
    ...(checkedSignal ? { signal: checkedSignal } : {}),
  };
}
