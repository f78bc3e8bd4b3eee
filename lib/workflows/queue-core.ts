// The per-key job queue state machine: plain deterministic TypeScript, no Temporal imports, so it can be unit- and
// property-tested in microseconds. The workflow feeds it enqueues and job outcomes, and starts the jobs it hands out.

/** Name of the one activity that runs every queue job; the job name travels in its input. */
export const RUN_JOB_ACTIVITY = 'temporalCoordinationRunJob';

/** Input of {@link RUN_JOB_ACTIVITY}. */
export interface RunJobInput {
  /** Shown in the activity's input in the Temporal UI; handlers receive only `args`. */
  readonly jobId?: string;
  readonly name: string;
  readonly args: readonly unknown[];
  /** From the enqueuing client, for telemetry; absent for jobs of clients without it. */
  readonly telemetry?: JobTelemetryContext;
}

/** Carried with a job for OpenTelemetry: set by instrumented clients, read by the worker's job activity. */
export interface JobTelemetryContext {
  /** When the job was enqueued, by the enqueuing client's clock (ms since the epoch). */
  readonly enqueuedAt: number;
  /** The enqueue span's W3C trace context (`traceparent`, ...), which every attempt's span links to. */
  readonly trace?: Readonly<Record<string, string>>;
}

/** Bounds shared by the client (to reject oversize input early) and the workflow (to keep its state small). */
export const queueLimits = {
  /** A job's serialised arguments may take at most this many bytes, so pending jobs fit the carried state. */
  maxArgsBytes: 256 * 1024,
  /** Longest accepted `jobId`, in characters. */
  maxJobIdLength: 256,
  /** Largest accepted `concurrency` (a run may have at most 2,000 pending activities). */
  maxConcurrency: 1_000,
  /** Finished jobs remembered for dedup and `job.result()`, newest kept. */
  finishedWindow: 1_000,
  /** Total bytes of retained job results (serialised); the oldest results are dropped first. */
  resultBytes: 512 * 1024,
  /** Failures listed in `queueStatus().recentFailures`. */
  failureMemory: 100,
  /** Failure messages are cut to this many characters. */
  errorLength: 500,
} as const;

/**
 * Temporal retry policy fields of a job, with durations in milliseconds. `maximumAttempts: 0` means unlimited
 * (`Infinity` does not survive JSON).
 */
export interface JobRetryPolicy {
  readonly initialInterval?: number;
  readonly backoffCoefficient?: number;
  readonly maximumInterval?: number;
  readonly maximumAttempts: number;
  readonly nonRetryableErrorTypes?: readonly string[];
}

/** One job, as the enqueue signal carries it; every default is already applied by the client. */
export interface EnqueueRequest {
  readonly jobId: string;
  readonly name: string;
  readonly args: readonly unknown[];
  readonly retry: JobRetryPolicy;
  /** Per-attempt timeout (start to close), in ms. */
  readonly timeout: number;
  /** How many of the key's jobs may run at once; taken from the job that finds the queue empty. */
  readonly concurrency: number;
  /** Run as a local activity; absent (a normal activity) unless the job asked for it, as older clients send it. */
  readonly local?: true;
  /** Not started before this time (ms since the epoch); the jobs behind it wait too. */
  readonly runAt?: number;
  /** Spacing of the key's job starts; taken, like `concurrency`, from the job that finds the queue empty. */
  readonly rateLimit?: RateLimit;
  /** Passed on to the job's activity; absent from clients without telemetry. */
  readonly telemetry?: JobTelemetryContext;
}

/** At most `max` job starts in any window of `per` ms. */
export interface RateLimit {
  readonly max: number;
  readonly per: number;
}

/** A request to cancel one job: a pending job is dropped, a running one is told to stop. */
export interface CancelRequest {
  readonly jobId: string;
  readonly reason?: string;
}

/** How a finished job ended; results past the retention bound are dropped (`retained: false`). */
export type JobOutcome =
  | {
      readonly jobId: string;
      readonly state: 'succeeded';
      readonly retained: boolean;
      readonly result?: unknown;
      /** A cancel reached the job while it ran, and its handler finished anyway. */
      readonly cancelRequested?: true;
    }
  | {
      readonly jobId: string;
      readonly state: 'failed';
      readonly error: string;
      readonly attempts: number;
      readonly cancelRequested?: true;
    }
  | { readonly jobId: string; readonly state: 'cancelled'; readonly reason?: string };

/** A job that failed for good. */
export interface JobFailure {
  readonly jobId: string;
  readonly name: string;
  /** The last attempt's error message (cut to 500 characters). */
  readonly error: string;
  readonly attempts: number;
  /** When it failed, in ms since the epoch. */
  readonly failedAt: number;
}

/** What the queue knows about one job. */
export type JobView =
  | { readonly state: 'pending'; readonly position: number; readonly runAt?: number }
  | { readonly state: 'running'; readonly cancelRequested?: true }
  | JobOutcome
  | { readonly state: 'unknown' };

/** A queue's state as `queueStatus` reports it. */
export interface QueueStatus {
  /** Whether a workflow is running for the key; an idle key has none and reports empty counts. */
  readonly active: boolean;
  readonly paused: boolean;
  /** How many jobs may run at once. */
  readonly concurrency: number;
  /** Jobs waiting to start. */
  readonly pending: number;
  /** IDs of the jobs running now, oldest first. */
  readonly running: readonly string[];
  /** Jobs finished (succeeded or failed for good) since the key's workflow started. */
  readonly processed: number;
  /** Jobs cancelled since the key's workflow started (while pending or while running). */
  readonly cancelled?: number;
  /** The key's rate limit, if the job that found it idle set one. */
  readonly rateLimit?: RateLimit;
  /** Pending jobs that wait for their `runAt` (at most the first 100), in queue order. */
  readonly delayed?: readonly { readonly jobId: string; readonly runAt: number }[];
  /** The latest jobs that failed for good, oldest first. */
  readonly recentFailures: readonly JobFailure[];
}

/** Everything a run hands to the next one through continue-as-new (never with jobs running). */
export interface QueueSnapshot {
  readonly concurrency: number;
  readonly paused: boolean;
  readonly processed: number;
  readonly cancelled?: number;
  readonly rateLimit?: RateLimit;
  /** Start times of the latest jobs (at most `rateLimit.max`), oldest first. */
  readonly starts?: readonly number[];
  readonly pending: readonly EnqueueRequest[];
  /** Finished jobs, oldest first. */
  readonly finished: readonly JobOutcome[];
  readonly failures: readonly JobFailure[];
}

/** What a queue workflow returns when it exits idle: enough for `job.result()` after the run closed. */
export interface QueueResult {
  readonly processed: number;
  readonly finished: readonly JobOutcome[];
  readonly failures: readonly JobFailure[];
}

export interface QueueCoreOptions {
  readonly finishedWindow: number;
  readonly resultBytes: number;
  readonly failureMemory: number;
  readonly errorLength: number;
}

/** UTF-8 length of a string, without TextEncoder (keeps the core free of runtime globals). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        bytes += 3;
      }
    } else bytes += 3;
  }
  return bytes;
}

function jsonBytes(value: unknown): number {
  return utf8Length(JSON.stringify(value) ?? '');
}

interface Finished {
  outcome: JobOutcome;
  /** Serialised size of `outcome`. */
  bytes: number;
  /** Serialised size of the retained result, 0 when none is retained. */
  resultBytes: number;
}

/** How a cancel found its job: still pending (dropped), running (told to stop), or neither. */
export type CancelFound = 'pending' | 'running' | 'none';

/** Longest list of delayed jobs a status reports. */
const DELAYED_SHOWN = 100;

export class QueueCore {
  private concurrency: number;
  private rateLimit: RateLimit | undefined;
  /** Start times of the latest jobs, oldest first, as many as the rate limit looks back at. */
  private starts: number[];
  private paused: boolean;
  private processed: number;
  private cancelled: number;
  private readonly pending: EnqueueRequest[];
  /** Per pending job: its serialised size, and its sequence number (position = its number - the head's). */
  private readonly pendingInfo = new Map<string, { bytes: number; seq: number }>();
  private nextSeq = 0;
  private pendingTotal = 0;
  private readonly running = new Map<string, EnqueueRequest>();
  /** Running jobs a cancel reached, with its reason. */
  private readonly cancelling = new Map<string, string | undefined>();
  private readonly finished: Finished[] = [];
  private readonly finishedById = new Map<string, Finished>();
  private finishedTotal = 0;
  private resultTotal = 0;
  private readonly failures: JobFailure[] = [];
  private readonly failureBytes: number[] = [];
  private failureTotal = 0;

  constructor(
    snapshot: QueueSnapshot,
    private readonly options: QueueCoreOptions,
  ) {
    this.concurrency = snapshot.concurrency;
    this.rateLimit = snapshot.rateLimit;
    this.starts = [...(snapshot.starts ?? [])];
    this.paused = snapshot.paused;
    this.processed = snapshot.processed;
    this.cancelled = snapshot.cancelled ?? 0;
    this.pending = [];
    for (const job of snapshot.pending) this.addPending(job);
    for (const outcome of snapshot.finished) this.addFinished(outcome);
    for (const failure of snapshot.failures) this.addFailure(failure);
  }

  /** A snapshot for a key with no history. */
  static empty(): QueueSnapshot {
    return { concurrency: 1, paused: false, processed: 0, pending: [], finished: [], failures: [] };
  }

  private addPending(job: EnqueueRequest): void {
    const bytes = jsonBytes(job);
    this.pending.push(job);
    this.pendingInfo.set(job.jobId, { bytes, seq: this.nextSeq++ });
    this.pendingTotal += bytes;
  }

  /** Takes a pending job out of the queue, wherever it stands; the ones behind it move up. */
  private removePending(jobId: string): EnqueueRequest | undefined {
    const info = this.pendingInfo.get(jobId);
    if (!info) return undefined;
    const index = info.seq - this.pendingInfo.get(this.pending[0]!.jobId)!.seq;
    const [job] = this.pending.splice(index, 1);
    this.pendingInfo.delete(jobId);
    this.pendingTotal -= info.bytes;
    for (let i = index; i < this.pending.length; i++) this.pendingInfo.get(this.pending[i]!.jobId)!.seq--;
    this.nextSeq--;
    return job;
  }

  private addFinished(outcome: JobOutcome): void {
    const resultBytes = outcome.state === 'succeeded' && outcome.retained ? jsonBytes(outcome.result) : 0;
    const entry = { outcome, bytes: jsonBytes(outcome), resultBytes };
    this.finished.push(entry);
    this.finishedById.set(outcome.jobId, entry);
    this.finishedTotal += entry.bytes;
    this.resultTotal += resultBytes;
    while (this.finished.length > this.options.finishedWindow) this.dropOldestFinished();
    // Results go first, oldest first, so the retained ones stay within their byte budget.
    for (let i = 0; this.resultTotal > this.options.resultBytes && i < this.finished.length; i++) this.dropResult(i);
  }

  /** Remembers a job as cancelled (a reason is kept only if one was given, so the outcome stays JSON-stable). */
  private addCancelled(jobId: string, reason: string | undefined): void {
    this.cancelled++;
    this.addFinished(reason === undefined ? { jobId, state: 'cancelled' } : { jobId, state: 'cancelled', reason });
  }

  private dropOldestFinished(): void {
    const entry = this.finished.shift()!;
    this.finishedById.delete(entry.outcome.jobId);
    this.finishedTotal -= entry.bytes;
    this.resultTotal -= entry.resultBytes;
  }

  private addFailure(failure: JobFailure): void {
    const bytes = jsonBytes(failure);
    this.failures.push(failure);
    this.failureBytes.push(bytes);
    this.failureTotal += bytes;
    while (this.failures.length > this.options.failureMemory) this.dropOldestFailure();
  }

  private dropOldestFailure(): void {
    this.failures.shift();
    this.failureTotal -= this.failureBytes.shift() ?? 0;
  }

  private dropResult(index: number): void {
    const entry = this.finished[index]!;
    const { outcome } = entry;
    if (outcome.state !== 'succeeded' || !outcome.retained) return;
    const { result: _result, ...kept } = outcome;
    const dropped: JobOutcome = { ...kept, retained: false };
    const bytes = jsonBytes(dropped);
    this.resultTotal -= entry.resultBytes;
    this.finishedTotal += bytes - entry.bytes;
    entry.outcome = dropped;
    entry.bytes = bytes;
    entry.resultBytes = 0;
  }

  private isKnown(jobId: string): boolean {
    return this.pendingInfo.has(jobId) || this.running.has(jobId) || this.finishedById.has(jobId);
  }

  /**
   * Appends a job. A job ID the queue already knows (pending, running or among the remembered finished jobs) is
   * ignored and `false` returned. The job that finds the queue empty sets its concurrency and rate limit; while the
   * queue is busy a different value is ignored, so the jobs already queued keep the guarantee they were enqueued with.
   */
  enqueue(job: EnqueueRequest): boolean {
    if (this.isKnown(job.jobId)) return false;
    if (this.isDrained()) {
      this.concurrency = job.concurrency;
      this.rateLimit = job.rateLimit;
      if (this.rateLimit) this.starts = this.starts.slice(-this.rateLimit.max);
    }
    this.addPending(job);
    return true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /**
   * Cancels a job: a pending one leaves the queue at once and is remembered as cancelled; a running one is marked,
   * and the caller tells its handler to stop (its outcome comes when the handler settles). A job already cancelled
   * counts as found where it was; anything else is `none`.
   */
  cancel({ jobId, reason }: CancelRequest): CancelFound {
    if (this.removePending(jobId)) {
      this.addCancelled(jobId, reason);
      return 'pending';
    }
    if (this.running.has(jobId)) {
      if (!this.cancelling.has(jobId)) this.cancelling.set(jobId, reason);
      return 'running';
    }
    return 'none';
  }

  /** The time before which no job may start for time reasons (a delayed head, the rate limit), if it is later. */
  private startsAt(job: EnqueueRequest): number {
    let at = job.runAt ?? 0;
    const { rateLimit, starts } = this;
    if (rateLimit && starts.length >= rateLimit.max)
      at = Math.max(at, starts[starts.length - rateLimit.max]! + rateLimit.per);
    return at;
  }

  /**
   * Hands out the next job to start at `now`, in FIFO order, and marks it running; `undefined` when none may start
   * now (see {@link wakeAt} for when one may).
   */
  next(now: number): EnqueueRequest | undefined {
    if (this.paused || this.running.size >= this.concurrency) return undefined;
    const job = this.pending[0];
    if (!job || this.startsAt(job) > now) return undefined;
    this.pending.shift();
    this.pendingTotal -= this.pendingInfo.get(job.jobId)?.bytes ?? 0;
    this.pendingInfo.delete(job.jobId);
    this.running.set(job.jobId, job);
    if (this.rateLimit) {
      this.starts.push(now);
      if (this.starts.length > this.rateLimit.max) this.starts.shift();
    }
    return job;
  }

  /** When the head job may start if only time holds it back (a delay or the rate limit), else `undefined`. */
  wakeAt(now: number): number | undefined {
    if (this.paused || this.running.size >= this.concurrency) return undefined;
    const job = this.pending[0];
    if (!job) return undefined;
    const at = this.startsAt(job);
    return at > now ? at : undefined;
  }

  /** Records a running job's result. Results of unknown (not running) jobs are ignored. */
  succeed(jobId: string, result: unknown): void {
    if (!this.running.delete(jobId)) return;
    this.processed++;
    const retain = jsonBytes(result) <= this.options.resultBytes;
    this.addFinished({
      jobId,
      state: 'succeeded',
      retained: retain,
      ...(retain ? { result } : {}),
      ...this.takeCancelRequest(jobId),
    });
  }

  private takeCancelRequest(jobId: string): { cancelRequested?: true } {
    return this.cancelling.delete(jobId) ? { cancelRequested: true } : {};
  }

  /** Records that a running job failed for good; the queue moves on. */
  fail(jobId: string, error: string, attempts: number, now: number): void {
    const job = this.running.get(jobId);
    if (!job) return;
    this.running.delete(jobId);
    this.processed++;
    const message =
      error.length > this.options.errorLength ? `${error.slice(0, this.options.errorLength - 1)}…` : error;
    this.addFinished({ jobId, state: 'failed', error: message, attempts, ...this.takeCancelRequest(jobId) });
    this.addFailure({ jobId, name: job.name, error: message, attempts, failedAt: now });
  }

  /** Records that a running job stopped because it was cancelled. */
  stopped(jobId: string): void {
    if (!this.running.delete(jobId)) return;
    const reason = this.cancelling.get(jobId);
    this.cancelling.delete(jobId);
    this.addCancelled(jobId, reason);
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** No job pending or running. */
  isDrained(): boolean {
    return this.pending.length === 0 && this.running.size === 0;
  }

  /** Whether the workflow may exit: drained and not paused (a pause must outlive an empty queue). */
  canExit(): boolean {
    return this.isDrained() && !this.paused;
  }

  /** Serialised size of the pending jobs, which must all be carried across continue-as-new. */
  pendingBytes(): number {
    return this.pendingTotal;
  }

  /** Approximate serialised size of a snapshot or result. */
  carriedBytes(): number {
    return this.pendingTotal + this.finishedTotal + this.failureTotal;
  }

  /**
   * Drops retained results, then the oldest finished records and failures, until {@link carriedBytes} is at most
   * `budget`; pending jobs are never dropped. Returns whether it fits.
   */
  trim(budget: number): boolean {
    for (let i = 0; this.carriedBytes() > budget && i < this.finished.length; i++) this.dropResult(i);
    while (this.carriedBytes() > budget && this.finished.length > 0) this.dropOldestFinished();
    while (this.carriedBytes() > budget && this.failures.length > 0) this.dropOldestFailure();
    return this.carriedBytes() <= budget;
  }

  jobState(jobId: string): JobView {
    if (this.running.has(jobId))
      return this.cancelling.has(jobId) ? { state: 'running', cancelRequested: true } : { state: 'running' };
    const pending = this.pendingInfo.get(jobId);
    if (pending) {
      // Jobs leave from the head, or by a cancel that renumbers the ones behind, so positions come in O(1).
      const position = pending.seq - this.pendingInfo.get(this.pending[0]!.jobId)!.seq;
      const { runAt } = this.pending[position]!;
      return runAt === undefined ? { state: 'pending', position } : { state: 'pending', position, runAt };
    }
    return this.finishedById.get(jobId)?.outcome ?? { state: 'unknown' };
  }

  status(): QueueStatus {
    const delayed: { jobId: string; runAt: number }[] = [];
    for (const job of this.pending) {
      if (delayed.length >= DELAYED_SHOWN) break;
      if (job.runAt !== undefined) delayed.push({ jobId: job.jobId, runAt: job.runAt });
    }
    return {
      active: true,
      paused: this.paused,
      concurrency: this.concurrency,
      pending: this.pending.length,
      running: [...this.running.keys()],
      processed: this.processed,
      recentFailures: [...this.failures],
      cancelled: this.cancelled,
      delayed,
      ...(this.rateLimit ? { rateLimit: this.rateLimit } : {}),
    };
  }

  /** State for continue-as-new; only valid with no job running (activities cannot move to the next run). */
  snapshot(): QueueSnapshot {
    if (this.running.size > 0) throw new Error('Cannot snapshot a queue with running jobs');
    return {
      concurrency: this.concurrency,
      paused: this.paused,
      processed: this.processed,
      cancelled: this.cancelled,
      ...(this.rateLimit ? { rateLimit: this.rateLimit, starts: [...this.starts] } : {}),
      pending: [...this.pending],
      finished: this.finished.map((entry) => entry.outcome),
      failures: [...this.failures],
    };
  }

  /** What the workflow returns when it exits. */
  result(): QueueResult {
    return {
      processed: this.processed,
      finished: this.finished.map((entry) => entry.outcome),
      failures: [...this.failures],
    };
  }
}
