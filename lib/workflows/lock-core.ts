// The lock/semaphore state machine: plain deterministic TypeScript, no Temporal imports, so it can be unit- and
// property-tested in microseconds. The workflow feeds it requests and the clock, and reads its answers.

/**
 * A workflow that asked for a slot from workflow code: it is told its answer by a signal instead of asking for it. The
 * answer goes to the workflow ID's current run, not to a pinned run, so a requester that was reset (which re-applies
 * signals) still gets it; a run that awaits no such request ignores it, and the grant lapses after the claim window.
 */
export interface RequesterWorkflow {
  readonly workflowId: string;
}

/** A request to hold one of the `limit` slots of a resource for `ttl` milliseconds at a time. */
export interface AcquireRequest {
  readonly requestId: string;
  readonly ttl: number;
  readonly limit: number;
  /** Set by a workflow requester: the workflow to signal its grant (or rejection) to. Clients ask instead. */
  readonly notify?: RequesterWorkflow;
}

export interface Holder {
  readonly requestId: string;
  readonly token: number;
  readonly ttl: number;
  /** Workflow time (ms since epoch) at which the holder loses the slot unless it renews. */
  expiresAt: number;
  /** Whether the holder has renewed once, proving it received the grant. */
  claimed: boolean;
}

export interface Waiter {
  readonly requestId: string;
  readonly ttl: number;
  /** Numbers waiters in arrival order, across continue-as-new. */
  readonly ticket: number;
  readonly notify?: RequesterWorkflow;
}

/** What a requester learns about its own request. */
export type RequestState =
  | {
      readonly state: 'waiting';
      readonly position: number;
      /** The waiter's ticket: it may block once the run publishes a `blockingUpTo` at least this high. */
      readonly ticket: number;
    }
  | {
      readonly state: 'granted';
      readonly token: number;
      /** How long the grant lasts from the workflow's `now`, which in a query can stand still since its last task. */
      readonly expiresIn: number;
      /** When the grant lapses (workflow time, ms since epoch): what a late answer is checked against. */
      readonly expiresAt: number;
      readonly claimed: boolean;
    }
  | { readonly state: 'rejected'; readonly activeLimit: number }
  | { readonly state: 'unknown' };

/** An answer the shell must signal to a requesting workflow: its request was granted or rejected. */
export interface Notification {
  readonly requestId: string;
  readonly notify: RequesterWorkflow;
  readonly answer: Extract<RequestState, { state: 'granted' | 'rejected' }>;
}

/** An operator's forced release, kept so `lockStatus` can show who took a lease away and why. */
export interface ForcedRelease {
  readonly token: number;
  readonly reason: string;
  /** Workflow time (ms since epoch) of the release. */
  readonly at: number;
}

export interface LockStatus {
  /** Whether a workflow is running for the resource (an idle resource has none). */
  readonly running: boolean;
  readonly limit: number;
  readonly holders: readonly { readonly token: number; readonly expiresAt: number; readonly claimed: boolean }[];
  readonly waiting: number;
  /** The latest forced releases, oldest first. */
  readonly forcedReleases: readonly ForcedRelease[];
}

/** Everything a run hands to the next one through continue-as-new. */
export interface LockSnapshot {
  readonly limit: number;
  readonly nextToken: number;
  readonly nextTicket: number;
  readonly holders: readonly Holder[];
  readonly waiters: readonly Waiter[];
  /** Request IDs that are done (released, withdrawn, expired, rejected), newest last, for dedup. */
  readonly finished: readonly string[];
  readonly rejected: readonly (readonly [requestId: string, activeLimit: number])[];
  readonly forcedReleases: readonly ForcedRelease[];
}

export interface LockCoreOptions {
  /** How long a grant stays valid before its first renewal (the claim) must arrive. */
  readonly claimWindow: number;
  /** How many finished request IDs are remembered to ignore duplicates. */
  readonly dedupWindow: number;
}

const REJECTION_MEMORY = 100;
/** Forced releases are rare operator actions: the last few are enough to explain a lost lease. */
const FORCED_RELEASE_MEMORY = 10;

export class LockCore {
  private limit: number;
  private nextToken: number;
  private nextTicket: number;
  private readonly holders = new Map<string, Holder>();
  private waiters: Waiter[];
  private readonly waiterIds = new Set<string>();
  private readonly finished: string[];
  private readonly finishedIds: Set<string>;
  private readonly rejected: Map<string, number>;
  private readonly forcedReleases: ForcedRelease[];
  /** Answers for workflow requesters, taken by the shell after every event (so a snapshot never needs them). */
  private notifications: Notification[] = [];

  constructor(
    snapshot: LockSnapshot,
    private readonly options: LockCoreOptions,
  ) {
    this.limit = snapshot.limit;
    this.nextToken = snapshot.nextToken;
    this.nextTicket = snapshot.nextTicket;
    for (const holder of snapshot.holders) this.holders.set(holder.requestId, { ...holder });
    this.waiters = [...snapshot.waiters];
    for (const waiter of this.waiters) this.waiterIds.add(waiter.requestId);
    this.finished = [...snapshot.finished];
    this.finishedIds = new Set(this.finished);
    this.rejected = new Map(snapshot.rejected);
    this.forcedReleases = [...snapshot.forcedReleases];
  }

  /** A snapshot for a new resource; tokens and tickets start at `firstToken`. */
  static empty(firstToken: number): LockSnapshot {
    return {
      limit: 1,
      nextToken: firstToken,
      nextTicket: firstToken,
      holders: [],
      waiters: [],
      finished: [],
      rejected: [],
      forcedReleases: [],
    };
  }

  /**
   * Raises the token and ticket counters to at least `floor` (a new run seeds them from its start time), so a ticket
   * of a replaced run is never mistaken for one of this run's queue.
   */
  raiseTokenFloor(floor: number): void {
    this.nextToken = Math.max(this.nextToken, floor);
    this.nextTicket = Math.max(this.nextTicket, floor);
  }

  private isKnown(requestId: string): boolean {
    return (
      this.holders.has(requestId) ||
      this.waiterIds.has(requestId) ||
      this.finishedIds.has(requestId) ||
      this.rejected.has(requestId)
    );
  }

  private finish(requestId: string): void {
    this.finished.push(requestId);
    this.finishedIds.add(requestId);
    while (this.finished.length > this.options.dedupWindow) this.finishedIds.delete(this.finished.shift()!);
  }

  /** Queues a request; duplicates are ignored, and a request whose limit disagrees with a busy resource's is rejected. */
  acquire(request: AcquireRequest, now: number): void {
    if (this.isKnown(request.requestId)) return;
    if (this.isIdle()) {
      this.limit = request.limit;
    } else if (request.limit !== this.limit) {
      this.rejected.set(request.requestId, this.limit);
      if (this.rejected.size > REJECTION_MEMORY) this.rejected.delete(this.rejected.keys().next().value!);
      if (request.notify) {
        const answer = { state: 'rejected', activeLimit: this.limit } as const;
        this.notifications.push({ requestId: request.requestId, notify: request.notify, answer });
      }
      return;
    }
    const { requestId, ttl, notify } = request;
    const ticket = this.nextTicket++;
    this.waiters.push(notify ? { requestId, ttl, ticket, notify } : { requestId, ttl, ticket });
    this.waiterIds.add(request.requestId);
    this.grant(now);
  }

  /** Frees the slot held by `requestId` if `token` matches its grant; anything else is ignored. */
  release(requestId: string, token: number, now: number): void {
    const holder = this.holders.get(requestId);
    if (holder?.token !== token) return;
    this.drop(holder);
    this.grant(now);
  }

  /**
   * Frees the slot held with `token`, whoever holds it, and records why: an operator's way out when a holder is stuck.
   * Returns whether a slot was freed (false if no current holder has that token).
   */
  forceRelease(token: number, reason: string, now: number): boolean {
    const holder = [...this.holders.values()].find((candidate) => candidate.token === token);
    if (!holder) return false;
    this.forcedReleases.push({ token, reason, at: now });
    if (this.forcedReleases.length > FORCED_RELEASE_MEMORY) this.forcedReleases.shift();
    this.drop(holder);
    this.grant(now);
    return true;
  }

  /** Takes a request back: removed from the queue, or released if it was granted meanwhile. */
  withdraw(requestId: string, now: number): void {
    const holder = this.holders.get(requestId);
    if (holder) {
      this.drop(holder);
    } else if (this.waiterIds.delete(requestId)) {
      this.waiters = this.waiters.filter((waiter) => waiter.requestId !== requestId);
      this.finish(requestId);
    } else if (!this.isKnown(requestId)) {
      // Withdrawn before its acquire arrived (they travel separately): the acquire must be ignored when it comes.
      this.finish(requestId);
    }
    this.grant(now);
  }

  /** Extends a valid lease by its ttl, which also claims a fresh grant. Returns the new expiry, or `undefined` if lost. */
  renew(requestId: string, token: number, now: number): number | undefined {
    const holder = this.holders.get(requestId);
    if (holder?.token !== token || holder.expiresAt <= now) return undefined;
    holder.expiresAt = now + holder.ttl;
    holder.claimed = true;
    return holder.expiresAt;
  }

  /** Drops holders whose lease ran out at `now` and grants their slots. */
  expire(now: number): void {
    for (const holder of [...this.holders.values()]) {
      if (holder.expiresAt <= now) this.drop(holder);
    }
    this.grant(now);
  }

  private drop(holder: Holder): void {
    this.holders.delete(holder.requestId);
    this.finish(holder.requestId);
  }

  private grant(now: number): void {
    while (this.holders.size < this.limit && this.waiters.length > 0) {
      const waiter = this.waiters.shift()!;
      this.waiterIds.delete(waiter.requestId);
      const holder: Holder = {
        requestId: waiter.requestId,
        token: this.nextToken++,
        ttl: waiter.ttl,
        expiresAt: now + Math.min(waiter.ttl, this.options.claimWindow),
        claimed: false,
      };
      this.holders.set(waiter.requestId, holder);
      if (waiter.notify) {
        const answer = {
          state: 'granted',
          token: holder.token,
          expiresIn: holder.expiresAt - now,
          expiresAt: holder.expiresAt,
          claimed: false,
        } as const;
        this.notifications.push({ requestId: waiter.requestId, notify: waiter.notify, answer });
      }
    }
  }

  /** Whether answers are owed to workflow requesters. */
  hasNotifications(): boolean {
    return this.notifications.length > 0;
  }

  /** The answers owed to workflow requesters since the last call, oldest first: grants and rejections. */
  takeNotifications(): Notification[] {
    const taken = this.notifications;
    this.notifications = [];
    return taken;
  }

  /** When the next lease runs out, if any is held. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const holder of this.holders.values())
      if (next === undefined || holder.expiresAt < next) next = holder.expiresAt;
    return next;
  }

  /** The ticket of the waiter at `position`, if there is one. */
  ticketAt(position: number): number | undefined {
    return this.waiters[position]?.ticket;
  }

  /** How many requests wait. */
  waiting(): number {
    return this.waiters.length;
  }

  /** How many holders the resource admits at once (1 for a lock). */
  slotLimit(): number {
    return this.limit;
  }

  isIdle(): boolean {
    return this.holders.size === 0 && this.waiters.length === 0;
  }

  requestState(requestId: string, now: number): RequestState {
    const holder = this.holders.get(requestId);
    if (holder) {
      const { token, expiresAt, claimed } = holder;
      return { state: 'granted', token, expiresIn: expiresAt - now, expiresAt, claimed };
    }
    if (this.waiterIds.has(requestId)) {
      const position = this.waiters.findIndex((waiter) => waiter.requestId === requestId);
      const { ticket } = this.waiters[position]!;
      return { state: 'waiting', position, ticket };
    }
    const activeLimit = this.rejected.get(requestId);
    if (activeLimit !== undefined) return { state: 'rejected', activeLimit };
    return { state: 'unknown' };
  }

  status(): LockStatus {
    return {
      running: true,
      limit: this.limit,
      holders: [...this.holders.values()].map(({ token, expiresAt, claimed }) => ({ token, expiresAt, claimed })),
      waiting: this.waiters.length,
      forcedReleases: [...this.forcedReleases],
    };
  }

  snapshot(): LockSnapshot {
    return {
      limit: this.limit,
      nextToken: this.nextToken,
      nextTicket: this.nextTicket,
      holders: [...this.holders.values()].map((holder) => ({ ...holder })),
      waiters: [...this.waiters],
      finished: [...this.finished],
      rejected: [...this.rejected],
      forcedReleases: [...this.forcedReleases],
    };
  }
}
