import type { Lease } from './lease.js';

/** The leases of several locks held together (`acquireAll`, `withLocks`), by resource ID. `await using` works. */
export interface LeaseSet extends ReadonlyMap<string, Lease>, AsyncDisposable {
  /** Aborted as soon as any of the leases is lost, with that lease's `LeaseLostError` as its reason. */
  readonly signal: AbortSignal;
  /** Releases every lease. Idempotent; rejects with the first failed release after trying them all. */
  release(): Promise<void>;
}

/** Releases all of `leases` at once; rejects with the first failure after trying them all. */
export async function releaseAll(leases: Iterable<Lease>): Promise<void> {
  const results = await Promise.allSettled([...leases].map((lease) => lease.release()));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

export class ClientLeaseSet extends Map<string, Lease> implements LeaseSet {
  readonly signal: AbortSignal;
  #released: Promise<void> | undefined;

  constructor(leases: readonly Lease[]) {
    super(leases.map((lease) => [lease.resourceId, lease]));
    this.signal = AbortSignal.any(leases.map((lease) => lease.signal));
  }

  release(): Promise<void> {
    this.#released ??= releaseAll(this.values());
    return this.#released;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
