// What locks, semaphores, read-write locks and elections report to OpenTelemetry (see docs/observability.md).
import type { LeaseLostReason } from '../errors.js';
import type { Attributes, Instrument, Telemetry, TelemetrySpan } from '../telemetry.js';

/** What a lock is, in the `coordination.lock.kind` attribute. */
export type LockKind = 'lock' | 'semaphore' | 'read-write' | 'election';
/** How a wait ended, in the `coordination.lock.outcome` attribute. */
export type WaitOutcome = 'granted' | 'timeout' | 'aborted' | 'error';

/** The instruments of one coordinator's locks, made once. */
export class LockTelemetry {
  readonly waitDuration: Instrument;
  readonly holdDuration: Instrument;
  readonly grants: Instrument;
  readonly leasesLost: Instrument;
  readonly holders: Instrument;
  readonly waiters: Instrument;

  constructor(readonly telemetry: Telemetry) {
    this.waitDuration = telemetry.histogram(
      'coordination.lock.wait.duration',
      'How long requests waited for a slot, by outcome: granted, timeout (waitTimeout), aborted (signal) or error',
    );
    this.holdDuration = telemetry.histogram(
      'coordination.lock.hold.duration',
      'How long slots were held, from grant to release or loss',
    );
    this.grants = telemetry.counter('coordination.lock.grants', 'Slots granted to this process');
    this.leasesLost = telemetry.counter(
      'coordination.lease.lost',
      'Leases of this process lost before their release, by reason: expired (not renewed in time) or revoked',
    );
    this.holders = telemetry.gauge('coordination.lock.holders', 'Slots this process holds now');
    this.waiters = telemetry.gauge('coordination.lock.waiters', 'Requests of this process waiting for a slot now');
  }

  /**
   * Starts timing (and tracing) a request's wait for a slot of `resourceId`. A `tryAcquire` (`waits: false`) is no
   * wait: only its grant and hold are counted.
   */
  waitFor(resourceId: string, kind: LockKind, waits = true): LockWait {
    const attributes = { ...this.telemetry.resource(resourceId), 'coordination.lock.kind': kind };
    return new LockWait(this, attributes, waits);
  }
}

/** One request's wait: ends `granted` (then a {@link LockHold} follows) or with another outcome. */
export class LockWait {
  private readonly start = performance.now();
  private readonly span: TelemetrySpan | undefined;
  private hold: LockHold | undefined;

  constructor(
    private readonly lock: LockTelemetry,
    private readonly attributes: Attributes,
    waits: boolean,
  ) {
    if (!waits) return;
    this.span = lock.telemetry.startSpan('coordination.lock.wait', attributes);
    lock.waiters.add(1, attributes);
  }

  private end(outcome: WaitOutcome): void {
    if (!this.span) return;
    const attributes = { ...this.attributes, 'coordination.lock.outcome': outcome };
    this.lock.waitDuration.record(performance.now() - this.start, attributes);
    this.lock.waiters.add(-1, this.attributes);
    this.span.setAttributes({ 'coordination.lock.outcome': outcome });
    this.span.end();
  }

  /** The wait ended with a grant of fencing token `token`: the hold starts. */
  granted(token: number): LockHold {
    this.end('granted');
    this.hold = new LockHold(this.lock, this.attributes, token);
    return this.hold;
  }

  /** The wait ended without a grant. */
  failed(outcome: Exclude<WaitOutcome, 'granted'>, error: unknown): void {
    if (outcome === 'error') this.span?.fail(error);
    this.end(outcome);
  }

  /** Given to the lease, which calls it once when it is released or lost (always after `granted`). */
  readonly leaseEnded = (reason: LeaseLostReason): void => this.hold?.end(reason);
}

/** One held slot, from grant to release or loss. */
export class LockHold {
  private readonly start = performance.now();
  private readonly span: TelemetrySpan;
  private ended = false;

  constructor(
    private readonly lock: LockTelemetry,
    private readonly attributes: Attributes,
    token: number,
  ) {
    this.span = lock.telemetry.startSpan('coordination.lock.hold', { ...attributes, 'coordination.lock.token': token });
    lock.grants.add(1, attributes);
    lock.holders.add(1, attributes);
  }

  /** Runs `fn` (the critical section) with the hold's span active, so the caller's spans inside it are its children. */
  within<T>(fn: () => T): T {
    return this.span.within(fn);
  }

  end(reason: LeaseLostReason): void {
    if (this.ended) return;
    this.ended = true;
    this.lock.holdDuration.record(performance.now() - this.start, this.attributes);
    this.lock.holders.add(-1, this.attributes);
    if (reason !== 'released') {
      this.lock.leasesLost.add(1, { ...this.attributes, 'coordination.lease.lost.reason': reason });
      this.span.fail(new Error(`lease lost (${reason})`));
    }
    this.span.setAttributes({ 'coordination.lease.end': reason });
    this.span.end();
  }
}
