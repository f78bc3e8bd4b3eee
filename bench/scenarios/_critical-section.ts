/**
 * The correctness checks every lock and semaphore scenario runs while it measures, and the hand-off latencies it
 * measures with them. Every holder, whatever the lock, calls {@link CriticalSections.enter} when its critical section
 * starts and {@link CriticalSections.exit} when it calls release; all of them live in this process, so one clock
 * orders them.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Row } from '../scenario.js';

export interface Entry {
  readonly token: number | undefined;
  /** `performance.now()` when the holder's critical section started. */
  readonly start: number;
  /** `performance.now()` when the holder called release (`NaN` while inside). */
  end: number;
}

export interface HandOffs {
  /** Release called -> next holder's critical section starts, ms, in grant order, warm-up left out. */
  readonly latencies: number[];
  /** Wall time over which the measured hand-offs happened, ms. */
  readonly elapsed: number;
  /** Measured hand-offs. */
  readonly operations: number;
}

/** Thrown when a lock let more holders in than its limit, lost a grant, or handed out tokens out of order. */
export class CorrectnessError extends Error {
  override readonly name = 'CorrectnessError';
}

/**
 * Watches one resource's critical sections: an overlap detector (never more than `limit` inside, by a live counter
 * and by the recorded intervals), and a fencing-token check (for a lock, tokens strictly increase in grant order; for
 * a semaphore, they are unique).
 */
export class CriticalSections {
  readonly entries: Entry[] = [];
  readonly violations: string[] = [];
  #inside = 0;

  constructor(
    readonly label: string,
    readonly limit = 1,
    /** Whether the lock hands out fencing tokens (PostgreSQL advisory locks and the Redis pattern do not). */
    readonly fenced = true,
  ) {}

  get count(): number {
    return this.entries.length;
  }

  enter(token: number | undefined): Entry {
    this.#inside++;
    if (this.#inside > this.limit) {
      this.violations.push(`${this.#inside} holders inside at once (limit ${this.limit}), token ${String(token)}`);
    }
    if (this.fenced && (token === undefined || !Number.isFinite(token))) {
      this.violations.push(`a holder got no fencing token (${String(token)})`);
    }
    const entry: Entry = { token, start: performance.now(), end: Number.NaN };
    this.entries.push(entry);
    return entry;
  }

  exit(entry: Entry): void {
    if (!Number.isNaN(entry.end)) this.violations.push(`token ${String(entry.token)} released twice`);
    entry.end = performance.now();
    this.#inside--;
  }

  /**
   * An empty critical section that still yields to the event loop once, so that a second holder let in meanwhile
   * would be caught inside by the live counter.
   */
  async hold(token: number | undefined): Promise<void> {
    const entry = this.enter(token);
    await yieldToEventLoop();
    this.exit(entry);
  }

  /**
   * Checks the recorded intervals and tokens and computes the hand-offs, leaving out the first `warmup` grants. The
   * k-th holder (in start order) can only have started once at least k - limit + 1 holders had called release, so its
   * hand-off latency is its start minus the (k - limit + 1)-th release; a negative one is an overlap.
   */
  analyse(warmup: number): HandOffs {
    const entries = [...this.entries].sort((a, b) => a.start - b.start);
    const open = entries.filter((entry) => Number.isNaN(entry.end)).length;
    if (open > 0) this.violations.push(`${open} holders never released`);
    const releases = entries.map((entry) => entry.end).sort((a, b) => a - b);
    for (let k = this.limit; k < entries.length; k++) {
      const start = entries[k]!.start;
      const release = releases[k - this.limit]!;
      if (start < release) {
        this.violations.push(
          `holder ${k} (token ${String(entries[k]!.token)}) started ${(release - start).toFixed(3)} ms before ` +
            `enough holders had released (limit ${this.limit})`,
        );
      }
    }
    if (this.fenced) this.checkTokens(entries);
    const first = Math.max(this.limit, warmup, 1);
    const latencies: number[] = [];
    for (let k = first; k < entries.length; k++) latencies.push(entries[k]!.start - releases[k - this.limit]!);
    const operations = Math.max(0, entries.length - first);
    const elapsed = operations === 0 ? 0 : entries[entries.length - 1]!.start - entries[first - 1]!.start;
    return { latencies, elapsed, operations };
  }

  private checkTokens(entries: readonly Entry[]): void {
    if (this.limit === 1) {
      for (let k = 1; k < entries.length; k++) {
        const previous = entries[k - 1]!.token!;
        const token = entries[k]!.token!;
        if (!(token > previous)) {
          this.violations.push(`fencing token ${token} granted after ${previous}: tokens must strictly increase`);
        }
      }
      return;
    }
    const seen = new Set<number>();
    for (const { token } of entries) {
      if (seen.has(token!)) this.violations.push(`fencing token ${token} granted twice`);
      seen.add(token!);
    }
  }

  /** Throws a {@link CorrectnessError} listing the first violations, if any. */
  /** Checks the run (see `assertCorrect`) and returns its hand-offs, warm-up left out, as a report row. */
  handOffRow(warmup: number, expectedGrants: number, row: Omit<Row, 'samples' | 'elapsed' | 'operations'>): Row {
    const { latencies, elapsed, operations } = this.analyse(warmup);
    this.assertCorrect(expectedGrants);
    return { ...row, samples: latencies, elapsed, operations };
  }

  assertCorrect(expectedGrants?: number): void {
    if (expectedGrants !== undefined && this.entries.length !== expectedGrants) {
      this.violations.push(`${this.entries.length} grants, expected ${expectedGrants}`);
    }
    if (this.violations.length === 0) return;
    const shown = this.violations.slice(0, 5).join('; ');
    const more = this.violations.length > 5 ? ` (and ${this.violations.length - 5} more)` : '';
    throw new CorrectnessError(`${this.label}: ${this.violations.length} correctness violations: ${shown}${more}`);
  }
}

/** The analyses of several resources, pooled: latencies together, operations summed, over the overall wall time. */
export function pool(monitors: readonly CriticalSections[], warmup: number): HandOffs {
  const latencies: number[] = [];
  let operations = 0;
  let from = Number.POSITIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  for (const monitor of monitors) {
    const analysis = monitor.analyse(warmup);
    latencies.push(...analysis.latencies);
    operations += analysis.operations;
    if (analysis.operations > 0) {
      const starts = monitor.entries.map((entry) => entry.start).sort((a, b) => a - b);
      from = Math.min(from, starts[starts.length - 1]! - analysis.elapsed);
      to = Math.max(to, starts[starts.length - 1]!);
    }
  }
  return { latencies, operations, elapsed: operations === 0 ? 0 : to - from };
}

/**
 * A budget of grants shared by the contenders of one resource: each takes one before it asks for the lock and stops
 * when none is left, so a lock that lets one contender barge (Redis) still hands out exactly `grants`.
 */
export class GrantBudget {
  #left: number;
  constructor(readonly grants: number) {
    this.#left = grants;
  }
  take(): boolean {
    if (this.#left <= 0) return false;
    this.#left--;
    return true;
  }
}

/** `min-max` grants per contender: how fair the lock was (FIFO gives an even split). */
export function spread(perContender: readonly number[]): string {
  return `${Math.min(...perContender)}-${Math.max(...perContender)}`;
}

/**
 * Runs `contenders` loops at once, each taking grants from `budget` and holding the lock once per grant with
 * `hold(index, stop)`, until the budget is spent. On the first error (or Ctrl-C, `signal`), `stop` is aborted so the
 * other contenders give up their waits, and all of them are waited for before the error is thrown: their connections
 * must not close under RPCs still in flight. Returns how many grants each contender got.
 */
export async function contend(
  signal: AbortSignal,
  contenders: number,
  budget: GrantBudget,
  hold: (index: number, stop: AbortSignal) => Promise<void>,
): Promise<number[]> {
  const stop = new AbortController();
  // Every contender's wait listens to it: no leak warning for that.
  setMaxListeners(0, stop.signal);
  const onAbort = () => stop.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  let failure: { readonly error: unknown } | undefined;
  const grants = Array.from({ length: contenders }, () => 0);
  try {
    await Promise.all(
      grants.map(async (_, index) => {
        try {
          while (!stop.signal.aborted && budget.take()) {
            await hold(index, stop.signal);
            grants[index]!++;
          }
        } catch (error) {
          if (failure === undefined) {
            failure = { error };
            stop.abort(error);
          }
        }
      }),
    );
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (failure !== undefined) throw failure.error;
  return grants;
}
