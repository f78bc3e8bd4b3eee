// The lock/semaphore state machine: plain deterministic TypeScript, no Temporal imports, so it can be unit- and
// property-tested in microseconds. The workflow feeds it requests and the clock, and reads its answers.
import { READ_WRITE } from './lock-protocol.js';

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
  /** How many may hold at once, or `READ_WRITE` (0): then `mode` says whether it reads or writes. */
  readonly limit: number;
  readonly mode?: LockMode;
  /** Set by a workflow requester: the workflow to signal its grant (or rejection) to. Clients ask instead. */
  readonly notify?: RequesterWorkflow;
  /** An election candidate's value, kept with its grant: what observers see as the leader. */
  readonly value?: string;
}

/** A read-write lock's request: many may read at once, one may write, alone. */
export type LockMode = 'read' | 'write';

export interface Holder {
  readonly requestId: string;
  readonly token: number;
  readonly ttl: number;
  readonly mode?: LockMode;
  readonly value?: string;
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
  readonly mode?: LockMode;
  readonly notify?: RequesterWorkflow;
  readonly value?: string;
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
type Granted = Extract<RequestState, { state: 'granted' }>;
/** A request's state once it no longer waits: granted, rejected, or unknown (finished, refused, never seen). */
export type Decided = Exclude<RequestState, { state: 'waiting' }>;

/** An answer the shell must signal to a requesting workflow: its request was granted or rejected. */
export interface Notification {
  readonly requestId: string;
  readonly notify: RequesterWorkflow;
  readonly answer: Granted | Extract<RequestState, { state: 'rejected' }>;
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
  readonly holders: readonly {
    readonly token: number;
    readonly expiresAt: number;
    readonly claimed: boolean;
    readonly mode?: LockMode;
  }[];
  readonly waiting: number;
  /** The latest forced releases, oldest first. */
  readonly forcedReleases: readonly ForcedRelease[];
}

/** Who leads an election: the holder's value and its term (fencing token), or neither while nobody leads. */
export interface Leadership {
  readonly leader: string | undefined;
  readonly term: number | undefined;
}

/** One change of an election's leader, numbered in order across runs. */
export interface LeaderChange extends Leadership {
  readonly seq: number;
}

/** What an election's observers read: the changes after the one they saw last, and who leads now. */
export interface LeadershipView {
  readonly changes: readonly LeaderChange[];
  readonly current: Leadership;
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
  /** An election's latest leader changes, oldest first; absent for a lock. */
  readonly changes?: readonly LeaderChange[];
}

export interface LockCoreOptions {
  /** How long a grant stays valid before its first renewal (the claim) must arrive. */
  readonly claimWindow: number;
  /** How many finished request IDs are remembered to ignore duplicates. */
  readonly dedupWindow: number;
  /** Whether the resource is an election, whose leader changes are kept for observers (a snapshot says so itself). */
  readonly election?: boolean;
}

const REJECTION_MEMORY = 100;
/** Observers read the changes since their last look, a fraction of a second ago: these many are plenty. */
const CHANGE_MEMORY = 100;
/** Forced releases are rare operator actions: the last few are enough to explain a lost lease. */
const FORCED_RELEASE_MEMORY = 10;

export class LockCore {
  private limit: number;
  private nextToken: number;
  private nextTicket: number;
  private readonly holders: Map<string, Holder>;
  /** In arrival order, as a `Map` keeps its keys. */
  private readonly waiters: Map<string, Waiter>;
  /** Done request IDs, oldest first, as a `Set` keeps them. */
  private readonly finished: Set<string>;
  private readonly rejected: Map<string, number>;
  private readonly forcedReleases: ForcedRelease[];
  /** An election's leader changes (`undefined` for a lock), and the number of the next one. */
  private readonly changes: LeaderChange[] | undefined;
  private nextSeq: number;
  /** Answers for workflow requesters, taken by the shell after every event (so a snapshot never needs them). */
  private notifications: Notification[] = [];

  /**
   * Takes over `snapshot`, the previous run's state, if any. Tokens and tickets start at `tokenFloor` at least (a run
   * seeds it from its start time): they keep increasing across idle exits, and a ticket of a replaced run is never
   * mistaken for one of this run's queue.
   */
  constructor(
    snapshot: LockSnapshot | undefined,
    tokenFloor: number,
    private readonly options: LockCoreOptions,
  ) {
    this.limit = snapshot?.limit ?? 1;
    this.nextToken = Math.max(snapshot?.nextToken ?? 0, tokenFloor);
    this.nextTicket = Math.max(snapshot?.nextTicket ?? 0, tokenFloor);
    this.holders = new Map(snapshot?.holders.map((holder) => [holder.requestId, { ...holder }]));
    this.waiters = new Map(snapshot?.waiters.map((waiter) => [waiter.requestId, waiter]));
    this.finished = new Set(snapshot?.finished);
    this.rejected = new Map(snapshot?.rejected);
    this.forcedReleases = [...(snapshot?.forcedReleases ?? [])];
    this.changes = snapshot?.changes || options.election ? [...(snapshot?.changes ?? [])] : undefined;
    // Numbered from the token floor when there is none to follow, so numbers keep increasing across idle exits.
    this.nextSeq = Math.max((this.changes?.at(-1)?.seq ?? 0) + 1, tokenFloor);
  }

  private isKnown(requestId: string): boolean {
    const { holders, waiters, finished, rejected } = this;
    return holders.has(requestId) || waiters.has(requestId) || finished.has(requestId) || rejected.has(requestId);
  }

  private finish(requestId: string): void {
    this.finished.add(requestId);
    if (this.finished.size > this.options.dedupWindow) this.finished.delete(this.finished.values().next().value!);
  }

  /** Queues a request; duplicates are ignored, and a request whose limit disagrees with a busy resource's is rejected. */
  acquire(request: AcquireRequest, now: number): void {
    if (this.isKnown(request.requestId)) return;
    if (this.rejectedLimit(request)) return;
    this.waiters.set(request.requestId, this.waiter(request));
    this.grant(now);
  }

  /**
   * Grants a request at once if a slot is free and nobody waits, else refuses it: it never joins the queue, and is
   * finished, so a duplicate of a refused request is refused too. Returns its state: granted, rejected (its limit
   * disagrees with a busy resource's) or, refused, unknown.
   */
  tryAcquire(request: AcquireRequest, now: number): Decided {
    const { requestId } = request;
    if (!this.isKnown(requestId) && !this.rejectedLimit(request)) {
      if (this.waiters.size === 0 && this.grantable(request)) {
        this.waiters.set(requestId, this.waiter(request));
        this.grant(now);
      } else {
        this.finish(requestId);
      }
    }
    const state = this.requestState(requestId, now);
    // Waiting only under the ID of a request queued by `acquire`, which is not this try's to answer for.
    return state.state === 'waiting' ? { state: 'unknown' } : state;
  }

  /** Whether `tryAcquire` of `request` would be refused: someone waits, or it could not hold beside the holders. */
  isFull(request: AcquireRequest): boolean {
    const sameKind = request.limit === this.limit;
    return !this.isIdle() && sameKind && (this.waiters.size > 0 || !this.grantable(request));
  }

  /** Whether a request of this resource's kind could hold now, beside the holders. */
  private grantable({ mode }: Pick<Waiter, 'mode'>): boolean {
    if (this.limit !== READ_WRITE) return this.holders.size < this.limit;
    if (mode === 'write') return this.holders.size === 0;
    for (const holder of this.holders.values()) if (holder.mode === 'write') return false;
    return true;
  }

  /** A new request's place in the queue, numbered by the next ticket. */
  private waiter({ requestId, ttl, mode, notify, value }: AcquireRequest): Waiter {
    const waiter: Waiter = { requestId, ttl, ticket: this.nextTicket++ };
    return { ...waiter, ...(mode && { mode }), ...(notify && { notify }), ...(value !== undefined && { value }) };
  }

  /** Takes a new request's limit if the resource is idle; else rejects it if its limit disagrees (and says so). */
  private rejectedLimit({ requestId, limit, notify }: AcquireRequest): boolean {
    if (this.isIdle()) this.limit = limit;
    if (limit === this.limit) return false;
    this.rejected.set(requestId, this.limit);
    if (this.rejected.size > REJECTION_MEMORY) this.rejected.delete(this.rejected.keys().next().value!);
    if (notify) this.notifications.push({ requestId, notify, answer: { state: 'rejected', activeLimit: this.limit } });
    return true;
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
    if (holder) this.drop(holder);
    // Withdrawn before its acquire arrived (they travel separately), the acquire must be ignored when it comes.
    else if (this.waiters.delete(requestId) || !this.isKnown(requestId)) this.finish(requestId);
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
    for (const holder of this.holders.values()) if (holder.expiresAt <= now) this.drop(holder);
    this.grant(now);
  }

  private drop(holder: Holder): void {
    this.holders.delete(holder.requestId);
    this.finish(holder.requestId);
  }

  private grant(now: number): void {
    // In arrival order, up to the first that cannot hold yet: a writer is never overtaken by readers behind it.
    for (const waiter of this.waiters.values()) {
      if (!this.grantable(waiter)) break;
      const { requestId, ttl, mode, notify, value } = waiter;
      this.waiters.delete(requestId);
      const expiresAt = now + Math.min(ttl, this.options.claimWindow);
      const token = this.nextToken++;
      const holder: Holder = { requestId, token, ttl, expiresAt, claimed: false };
      Object.assign(holder, mode && { mode }, value !== undefined && { value });
      this.holders.set(requestId, holder);
      if (notify) this.notifications.push({ requestId, notify, answer: granted(holder, now) });
    }
    this.recordLeader();
  }

  /** Logs the election's leader if it changed: a new term, or nobody leading any more. */
  private recordLeader(): void {
    if (this.changes === undefined) return;
    const { leader, term } = this.leadership();
    if (term === (this.changes.at(-1)?.term ?? undefined)) return;
    this.changes.push({ seq: this.nextSeq++, leader, term });
    if (this.changes.length > CHANGE_MEMORY) this.changes.shift();
  }

  /** Who leads the election: the first holder (an election has one slot). */
  leadership(): Leadership {
    const [holder] = this.holders.values();
    return { leader: holder?.value, term: holder?.token };
  }

  /** The leader changes after `afterSeq`, and who leads now. */
  leadershipView(afterSeq: number): LeadershipView {
    return { changes: (this.changes ?? []).filter(({ seq }) => seq > afterSeq), current: this.leadership() };
  }

  /** Whether answers are owed to workflow requesters. */
  hasNotifications(): boolean {
    return this.notifications.length > 0;
  }

  /** The answers owed to workflow requesters since the last call, oldest first: grants and rejections. */
  takeNotifications(): Notification[] {
    return this.notifications.splice(0);
  }

  /** When the next lease runs out, if any is held. */
  nextExpiry(): number | undefined {
    const expiries = [...this.holders.values()].map((holder) => holder.expiresAt);
    return expiries.length > 0 ? Math.min(...expiries) : undefined;
  }

  /** The ticket of the waiter at `position`, if there is one. */
  ticketAt(position: number): number | undefined {
    if (position < 0) return undefined;
    for (const waiter of this.waiters.values()) if (position-- === 0) return waiter.ticket;
    return undefined;
  }

  /** How many requests wait. */
  waiting(): number {
    return this.waiters.size;
  }

  /** How many holders the resource admits at once (1 for a lock), or `READ_WRITE`. */
  slotLimit(): number {
    return this.limit;
  }

  isIdle(): boolean {
    return this.holders.size === 0 && this.waiters.size === 0;
  }

  requestState(requestId: string, now: number): RequestState {
    const holder = this.holders.get(requestId);
    if (holder) return granted(holder, now);
    const waiter = this.waiters.get(requestId);
    if (waiter) {
      let position = 0;
      for (const { ticket } of this.waiters.values()) if (ticket < waiter.ticket) position++;
      return { state: 'waiting', position, ticket: waiter.ticket };
    }
    const activeLimit = this.rejected.get(requestId);
    return activeLimit === undefined ? { state: 'unknown' } : { state: 'rejected', activeLimit };
  }

  status(): LockStatus {
    return {
      running: true,
      limit: this.limit,
      holders: [...this.holders.values()].map(({ token, expiresAt, claimed, mode }) => ({
        token,
        expiresAt,
        claimed,
        ...(mode && { mode }),
      })),
      waiting: this.waiters.size,
      forcedReleases: [...this.forcedReleases],
    };
  }

  snapshot(): LockSnapshot {
    return {
      limit: this.limit,
      nextToken: this.nextToken,
      nextTicket: this.nextTicket,
      holders: [...this.holders.values()].map((holder) => ({ ...holder })),
      waiters: [...this.waiters.values()],
      finished: [...this.finished],
      rejected: [...this.rejected],
      forcedReleases: [...this.forcedReleases],
      ...(this.changes ? { changes: [...this.changes] } : {}),
    };
  }
}

function granted({ token, expiresAt, claimed }: Holder, now: number): Granted {
  return { state: 'granted', token, expiresIn: expiresAt - now, expiresAt, claimed };
}
