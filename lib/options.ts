// Checks of the options users pass, each naming the option in its error; workflow-safe.
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time.js';

export type { Duration };

function describe(value: unknown): string {
  return `\`${typeof value === 'string' ? value : String(value)}\` (${typeof value})`;
}

/**
 * Converts a `Duration` option (`'30s'` or milliseconds) to milliseconds, throwing a `TypeError` or `RangeError`
 * that names the option when it is not a positive, finite duration.
 */
export function positiveDuration(name: string, value: unknown): number {
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new TypeError(
      `Expected \`${name}\` to be a duration such as '30s' or a number of milliseconds, got ${describe(value)}`,
    );
  }
  let ms: number;
  try {
    ms = msToNumber(value as Duration);
  } catch {
    throw new TypeError(
      `Expected \`${name}\` to be a duration such as '30s' or a number of milliseconds, got ${describe(value)}`,
    );
  }
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new RangeError(`Expected \`${name}\` to be a positive duration, got ${describe(value)}`);
  }
  return ms;
}

/** Like {@link positiveDuration}, for an option that may be left out. */
export function optionalPositiveDuration(name: string, value: unknown, fallback: number): number {
  return value === undefined ? fallback : positiveDuration(name, value);
}

/** Throws a `RangeError` naming the option unless `value` is an integer of at least 1. */
export function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Expected \`${name}\` to be a positive integer, got ${describe(value)}`);
  }
  return value;
}

/** Throws a TypeError unless `options` is an object whose keys are all in `known`. */
export function checkKnownOptions(options: unknown, known: ReadonlySet<string>): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected \`options\` to be an object, got \`${String(options)}\` (${typeof options})`);
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new TypeError(`Unknown option \`${key}\``);
  }
}

/** Throws a TypeError naming the option unless `value` is an `AbortSignal` or left out. */
export function optionalSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) {
    throw new TypeError(`Expected \`${name}\` to be an AbortSignal, got ${describe(value)}`);
  }
  return value;
}

/** Throws a TypeError naming the option unless `value` is a boolean or left out. */
export function optionalBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`Expected \`${name}\` to be a boolean, got ${describe(value)}`);
  }
  return value ?? fallback;
}

/** Throws a TypeError naming the option unless `value` is a string or left out. */
export function optionalString(name: string, value: unknown): string | undefined {
  if (value !== undefined && typeof value !== 'string') {
    throw new TypeError(`Expected \`${name}\` to be a string, got ${describe(value)}`);
  }
  return value;
}
