import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { LeaseLostError, type LeaseLostReason } from '../errors.js';
import { isBusy, retryTransient } from '../rpc.js';
import { releaseSignal, renewUpdate } from '../workflows/definitions.js';
import type { RequestState } from '../workflows/lock-core.js';

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
  readonly autoRenew: boolean;
  /** Called once, when the lease is released or lost (for telemetry). */
  readonly onEnd?: (reason: LeaseLostReason) => void;
}

/** A grant as the workflow answered it. */
type GrantAnswer = Pick<Extract<RequestState, { state: 'granted' }>, 'expiresIn' | 'expiresAt'>;

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
/**
 * How far this process's wall clock may be behind the Temporal server's. A grant's answer can arrive late (a paused
 * or overloaded process, a hand-over between runs, a query answered by a workflow whose clock stood still since its
 * last task), so a fresh grant is trusted only until its expiry by the wall clock, less this much.
 */
const CLOCK_TOLERANCE = 500;
/** A fresh grant with less than this left is claimed (renewed) before it is used, so its holder starts on proof. */
const MIN_UNCLAIMED = 1_000;

function sendRenewal(init: LeaseInit, budget: number, retryIf: (error: unknown) => boolean): Promise<number> {
  return retryTransient(
    'renew',
    () => init.handle.executeUpdate(renewUpdate, { args: [{ requestId: init.requestId, token: init.token }] }),
    { budget, retryIf },
  );
}

const ignore = () => {};

export class ClientLease implements Lease {
  readonly resourceId: string;
  readonly token: number;
  private readonly controller = new AbortController();
  private deadlineTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private released: Promise<void> | undefined;
  /** The renewal in flight, if any, settled either way. */
  private renewal: Promise<void> | undefined;

  /**
   * A lease for a fresh grant: trusted as answered while enough of it is left by both the answer and the wall clock;
   * else claimed first. Resolves to `undefined` if the grant lapsed, or could not be claimed while it lasted.
   */
  static async fromGrant(init: LeaseInit, grant: GrantAnswer): Promise<ClientLease | undefined> {
    const receivedAt = performance.now();
    const trusted = Math.min(grant.expiresIn, grant.expiresAt - Date.now() - CLOCK_TOLERANCE);
    if (trusted >= MIN_UNCLAIMED) return new ClientLease(init, receivedAt + trusted, false);
    try {
      // The workflow refuses a renewal past the grant's expiry, so however late, a successful claim proves the grant.
      // Busy or unreachable, the claim is worth retrying for as long as the answer said the grant lasts.
      const budget = Math.max(MIN_UNCLAIMED, grant.expiresIn);
      const expiresIn = await sendRenewal(init, budget, (error) => !isRejection(error));
      return new ClientLease(init, receivedAt + Math.min(expiresIn, init.ttl), true);
    } catch {
      return undefined;
    }
  }

  /** `deadline`: `performance.now()` at which the lease can no longer be proven valid. */
  private constructor(
    private readonly init: LeaseInit,
    private deadline: number,
    claimed: boolean,
  ) {
    this.resourceId = init.resourceId;
    this.token = init.token;
    this.armDeadline();
    if (claimed) {
      if (init.autoRenew) this.scheduleRenewal(init.ttl / 3, true);
      return;
    }
    // The first renewal claims the grant: until it lands, the workflow keeps the grant only for the claim window,
    // which started before the grant reached us (by seconds on a loaded server). So claim soon; a critical section
    // shorter than the delay releases first and needs no claim at all.
    this.scheduleRenewal(Math.min((deadline - performance.now()) / 3, CLAIM_DELAY), init.autoRenew);
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
      this.init.onEnd?.(reason);
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
    // No abort signal: a release waits for the renewal in flight to settle rather than leave it running.
    const renewal = sendRenewal(
      this.init,
      Math.max(0, this.deadline - sentAt),
      (error) => !isRejection(error) && !this.signal.aborted,
    );
    this.renewal = renewal.then(ignore, ignore);
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
