// What queues report to OpenTelemetry (see docs/observability.md): enqueues on the client, job attempts on the worker.
// The enqueue's trace context and time travel with the job (`JobTelemetryContext`), so the worker can link each
// attempt's span to the enqueue span and time the job's wait in the queue.
import type { JobTelemetryContext } from '../workflows/queue-core.js';
import type { Attributes, Instrument, Telemetry, TelemetrySpan } from '../telemetry.js';

/** Client side: one span and one count per enqueue. */
export class EnqueueTelemetry {
  private readonly enqueued: Instrument;
  private readonly cancels: Instrument;

  constructor(private readonly telemetry: Telemetry) {
    this.enqueued = telemetry.counter('coordination.queue.enqueued', 'Jobs enqueued by this process');
    this.cancels = telemetry.counter(
      'coordination.job.cancelled',
      'Cancels by this process that found their job pending or running',
    );
  }

  /** Counts a cancel that found its job pending or running. */
  cancelled(key: string): void {
    this.cancels.add(1, this.telemetry.resource(key));
  }

  /** Starts the enqueue span of job `name` on `key`; `fields` go into the enqueue request. */
  start(key: string, name: string, jobId: string): EnqueueSpan {
    const attributes = { ...this.telemetry.resource(key), 'coordination.job.name': name };
    const span = this.telemetry.startSpan('coordination.enqueue', this.telemetry.job(jobId, attributes), {
      kind: 'producer',
    });
    return new EnqueueSpan(this.telemetry.enabled, span, () => this.enqueued.add(1, attributes));
  }
}

export class EnqueueSpan {
  constructor(
    private readonly enabled: boolean,
    private readonly span: TelemetrySpan,
    private readonly count: () => void,
  ) {}

  /** What the job carries: nothing without OpenTelemetry, so uninstrumented clients send what they always sent. */
  fields(): { telemetry?: JobTelemetryContext } {
    if (!this.enabled) return {};
    const trace = this.span.carrier();
    return { telemetry: { enqueuedAt: Date.now(), ...(trace && { trace }) } };
  }

  /** Runs the enqueue RPC inside the span, and ends it. */
  async around<T>(send: () => Promise<T>): Promise<T> {
    try {
      const result = await this.span.within(send);
      this.count();
      return result;
    } catch (error) {
      this.span.fail(error);
      throw error;
    } finally {
      this.span.end();
    }
  }
}

/**
 * How one attempt ended, in `coordination.job.outcome`: `retried` means another attempt follows; `timed_out` that the
 * server stopped waiting for it (its `timeout` passed) before it ended, so whatever it returned was dropped.
 */
export type AttemptOutcome = 'succeeded' | 'retried' | 'failed' | 'cancelled' | 'timed_out';

/** How a job ended, in `coordination.job.outcome` of its attempts. */
type JobOutcome = 'succeeded' | 'failed' | 'cancelled';

/** What the job activity knows of its attempt (from the activity's `Info`). */
export interface AttemptInfo {
  readonly attempt: number;
  /** The queue workflow's ID: the key follows its `queue:` marker. */
  readonly workflowId: string;
  readonly maximumAttempts?: number;
  readonly nonRetryableErrorTypes?: readonly string[];
}

/** The key of a queue workflow ID (`<idPrefix>queue:<key>`, see lib/ids.ts). */
function keyOf(workflowId: string): string {
  const marker = workflowId.indexOf('queue:');
  return marker === -1 ? workflowId : workflowId.slice(marker + 'queue:'.length);
}

/**
 * Worker side: a span per attempt, linked to the enqueue span, and the job's durations. An attempt stopped by a cancel
 * ends with the outcome `cancelled`; cancels themselves are counted where they are made (`EnqueueTelemetry`).
 */
export class JobTelemetry {
  readonly attemptDuration: Instrument;
  readonly attempts: Instrument;
  readonly queueWait: Instrument;

  constructor(readonly telemetry: Telemetry) {
    this.attemptDuration = telemetry.histogram(
      'coordination.job.duration',
      'How long job attempts ran, by outcome: succeeded, retried (failed, another attempt follows) or failed (for good)',
    );
    this.attempts = telemetry.histogram(
      'coordination.job.attempts',
      'How many attempts finished jobs took, by outcome: succeeded or failed',
      '{attempt}',
    );
    this.queueWait = telemetry.histogram(
      'coordination.queue.wait.duration',
      "How long jobs waited in their key's queue, from enqueue to the start of their first attempt",
    );
  }

  /** Starts timing one attempt of job `name`. */
  start(input: { jobId?: string; name: string; telemetry?: JobTelemetryContext }, info: AttemptInfo): JobAttempt {
    const key = keyOf(info.workflowId);
    const attributes = { ...this.telemetry.resource(key), 'coordination.job.name': input.name };
    const { enqueuedAt, trace } = input.telemetry ?? {};
    if (info.attempt === 1 && typeof enqueuedAt === 'number') {
      // Clocks of two machines: never below zero, whatever their skew.
      this.queueWait.record(Math.max(0, Date.now() - enqueuedAt), attributes);
    }
    const spanAttributes = this.telemetry.job(input.jobId ?? '', {
      ...attributes,
      'coordination.job.attempt': info.attempt,
    });
    const span = this.telemetry.startSpan('coordination.job', spanAttributes, {
      kind: 'consumer',
      links: trace ? [trace] : [],
    });
    return new JobAttempt(this, span, attributes, info);
  }
}

/** One attempt of a job, from start to its outcome. */
export class JobAttempt {
  private readonly start = performance.now();

  constructor(
    private readonly job: JobTelemetry,
    private readonly span: TelemetrySpan,
    private readonly attributes: Attributes,
    private readonly info: AttemptInfo,
  ) {}

  /** Runs the handler with the attempt's span active. */
  run<T>(fn: () => T): T {
    return this.span.within(fn);
  }

  succeeded(): void {
    this.end('succeeded', 'succeeded');
  }

  /** The job was cancelled while this attempt ran, and its handler stopped. */
  cancelled(): void {
    this.end('cancelled', 'cancelled');
  }

  /**
   * The handler threw; `failure` is the `ApplicationFailure` the activity throws for it, whose `type` and
   * `nonRetryable` Temporal's retry policy goes by.
   */
  failed(failure: unknown): void {
    const { type, nonRetryable } = (failure ?? {}) as { type?: unknown; nonRetryable?: unknown };
    const last =
      nonRetryable === true ||
      this.lastAttempt() ||
      (typeof type === 'string' && (this.info.nonRetryableErrorTypes ?? []).includes(type));
    this.span.fail(failure);
    if (last) this.end('failed', 'failed');
    else this.end('retried', undefined);
  }

  /**
   * The server timed the attempt out while it ran: it ends as `timed_out`, whatever the handler did after. The last
   * attempt's timeout fails the job, so the job's attempts are then recorded as `failed`.
   */
  timedOut(): void {
    this.span.fail(new Error('The attempt timed out: the server no longer waited for it'));
    this.end('timed_out', this.lastAttempt() ? 'failed' : undefined);
  }

  private lastAttempt(): boolean {
    const { attempt, maximumAttempts } = this.info;
    return maximumAttempts !== undefined && maximumAttempts > 0 && attempt >= maximumAttempts;
  }

  /** Records the attempt's duration and, if the job ended with it (`job`: how), the attempts it took. */
  private end(outcome: AttemptOutcome, job: JobOutcome | undefined): void {
    const attributes = { ...this.attributes, 'coordination.job.outcome': outcome };
    this.job.attemptDuration.record(performance.now() - this.start, attributes);
    if (job) this.job.attempts.record(this.info.attempt, { ...this.attributes, 'coordination.job.outcome': job });
    this.span.setAttributes({ 'coordination.job.outcome': outcome });
    this.span.end();
  }
}
