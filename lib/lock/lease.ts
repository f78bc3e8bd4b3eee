import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { LeaseLostError, type LeaseLostReason } from '../errors.js';
import { isBusy, retryTransient } from '../rpc.js';
import { releaseSignal, renewUpdate } from '../workflows/definitions.js';

/** A granted slot of a lock or semaphore. Release it, or let `await using` do so. */
export interface Lease extends AsyncDisposable {
  readonly resourceId: string;
  /** Fencing token: strictly increases with every grant of this resource. Have the protected resource check it. */
  readonly token: number;
  /** Aborted, with a `LeaseLostError` as its reason, as soon as the lease can no longer be proven valid. */
  readonly signal: AbortSignal;
  /** When the lease lapses unless renewed, by this process's clock (conservative). */
  readonly expiresAt: Date;
  /** Extends the lease by its ttl now. Rejects with `LeaseLostError` if the lease is gone. */
  renew(): Promise<void>;
  /** Frees the slot. Idempotent; never affects a later holder. */
  release(): Promise<void>;
}

export interface LeaseInit {
  readonly handle: WorkflowHandle;
  readonly resourceId: string;
  readonly requestId: string;
  readonly token: number;
  readonly ttl: number;
  /** How long the grant was valid for when the workflow answered (the claim window for a fresh grant). */
  readonly expiresIn: number;
  /** `performance.now()` when the grant was received. */
  readonly receivedAt: number;
  readonly autoRenew: boolean;
}

/**
 * The workflow said no (stale token, unknown request) or is gone: the lease is lost for good. Anything else (server
 * unreachable, the workflow busy, an update caught in a run's hand-over to the next) is worth another try while the
 * lease lasts.
 */
function isRejection(error: unknown): boolean {
  return (error instanceof WorkflowUpdateFailedError && !isBusy(error)) || error instanceof WorkflowNotFoundError;
}

/** How long a fresh grant waits before it claims: short critical sections release first and skip the claim. */
const CLAIM_DELAY = 250;

export class ClientLease implements Lease {
  readonly resourceId: string;
  readonly token: number;
  private readonly controller = new AbortController();
  private deadline: number;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private released: Promise<void> | undefined;
  /** The renewal in flight, if any, settled either way. */
  private renewal: Promise<void> | undefined;

  constructor(private readonly init: LeaseInit) {
    this.resourceId = init.resourceId;
    this.token = init.token;
    this.deadline = init.receivedAt + init.expiresIn;
    this.armDeadline();
    // The first renewal claims the grant: until it lands, the workflow keeps the grant only for the claim window,
    // which started before the grant reached us (by seconds on a loaded server). So claim soon; a critical section
    // shorter than the delay releases first and needs no claim at all.
    this.scheduleRenewal(Math.min(init.expiresIn / 3, CLAIM_DELAY), init.autoRenew);
  }

  /** Renews after `delay` and, with `again`, every ttl/3 after that, until the lease is lost or released. */
  private scheduleRenewal(delay: number, again: boolean): void {
    this.renewTimer = setTimeout(() => {
      this.renew().then(
        () => again && !this.signal.aborted && this.scheduleRenewal(this.init.ttl / 3, true),
        () => {}, // `renew` already aborted the signal with the reason.
      );
    }, delay);
    // A pending renewal must not keep the process alive on its own.
    this.renewTimer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get expiresAt(): Date {
    return new Date(Date.now() + (this.deadline - performance.now()));
  }

  private lose(reason: LeaseLostReason, cause?: unknown): void {
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.renewTimer);
    if (!this.controller.signal.aborted) {
      this.controller.abort(new LeaseLostError(this.resourceId, this.token, reason, cause ? { cause } : undefined));
    }
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.lose('expired'), Math.max(0, this.deadline - performance.now()));
    this.deadlineTimer.unref();
  }

  async renew(): Promise<void> {
    this.signal.throwIfAborted();
    const sentAt = performance.now();
    const renewal = retryTransient(
      'renew',
      () =>
        this.init.handle.executeUpdate(renewUpdate, { args: [{ requestId: this.init.requestId, token: this.token }] }),
      // No abort signal: a release waits for the renewal in flight to settle rather than leave it running.
      { budget: Math.max(0, this.deadline - sentAt), retryIf: (error) => !isRejection(error) && !this.signal.aborted },
    );
    this.renewal = renewal.then(
      () => {},
      () => {},
    );
    try {
      const expiresIn = await renewal;
      this.signal.throwIfAborted();
      // Measured from when the renewal was sent, so the local deadline is never later than the workflow's.
      this.deadline = sentAt + Math.min(expiresIn, this.init.ttl);
      this.armDeadline();
    } catch (error) {
      if (!this.signal.aborted) this.lose(isRejection(error) ? 'revoked' : 'expired', error);
      throw this.signal.reason;
    }
  }

  release(): Promise<void> {
    this.released ??= this.sendRelease();
    return this.released;
  }

  private async sendRelease(): Promise<void> {
    const revoked = this.signal.aborted && (this.signal.reason as LeaseLostError).reason === 'revoked';
    this.lose('released');
    if (revoked) return;
    try {
      await retryTransient(
        'release',
        () => this.init.handle.signal(releaseSignal, { requestId: this.init.requestId, token: this.token }),
        // Past the ttl the lease lapses by itself, so there is no point retrying longer.
        { budget: this.init.ttl },
      );
    } catch (error) {
      // A closed workflow holds nothing: the lease is already free.
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    } finally {
      await this.renewal;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
