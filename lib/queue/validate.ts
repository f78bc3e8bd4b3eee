// Everything `enqueue` is given is checked here, before any RPC: a bad job is never partially enqueued.
import { randomUUID } from 'node:crypto';
import { positiveDuration, positiveInteger } from '../options.js';
import { queueLimits, type EnqueueRequest, type JobRetryPolicy } from '../workflows/queue-core.js';
import type { EnqueueOptions, JobRetryOptions } from './options.js';

const DEFAULT_TIMEOUT = 60_000;
const DEFAULT_MAXIMUM_ATTEMPTS = 5;

const enqueueOptionNames = new Set(['jobId', 'retry', 'timeout', 'concurrency', 'local']);
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

/** Validates a job and applies every default: the result is exactly what the enqueue signal carries. */
export function toEnqueueRequest(name: unknown, args: unknown, options: unknown): EnqueueRequest {
  nonEmptyString('name', name);
  checkArgs(args);
  if (options === undefined) options = {};
  checkKnownOptions('options', options, enqueueOptionNames, '');
  const { jobId, retry, timeout, concurrency, local } = options as EnqueueOptions;
  if (jobId !== undefined) {
    nonEmptyString('jobId', jobId);
    if (jobId.length > queueLimits.maxJobIdLength) {
      throw new RangeError(
        `Expected \`jobId\` to be at most ${queueLimits.maxJobIdLength} characters, got ${jobId.length}`,
      );
    }
  }
  if (concurrency !== undefined) {
    positiveInteger('concurrency', concurrency);
    if (concurrency > queueLimits.maxConcurrency) {
      throw new RangeError(`Expected \`concurrency\` to be at most ${queueLimits.maxConcurrency}, got ${concurrency}`);
    }
  }
  if (local !== undefined && typeof local !== 'boolean') {
    throw new TypeError(`Expected \`local\` to be a boolean, got ${show(local)}`);
  }
  return {
    jobId: jobId ?? randomUUID(),
    name: name as string,
    args: args as readonly unknown[],
    retry: checkRetry(retry),
    timeout: timeout === undefined ? DEFAULT_TIMEOUT : positiveDuration('timeout', timeout),
    concurrency: concurrency ?? 1,
    // Absent unless set: requests of normal jobs stay exactly what clients without the option send.
    ...(local === true ? { local: true } : {}),
  };
}
