import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueryRejectedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Context } from '../context.js';
import { checkResourceId, electionIdPrefix } from '../ids.js';
import { checkKnownOptions, optionalSignal, optionalString } from '../options.js';
import { LockClient, runThenRelease } from '../lock/client.js';
import type { Lease } from '../lock/lease.js';
import { acquireParams } from '../lock/request.js';
import { leadershipQuery } from '../workflows/definitions.js';
import type { LeadershipView } from '../workflows/lock-core.js';
import type { CampaignOptions, ObserveOptions } from './options.js';
import { ElectionTelemetry } from './telemetry.js';

/** Who leads an election: the leader's value and its term, or neither while nobody leads. */
export interface LeaderState {
  readonly leader: string | undefined;
  /** The leader's term: its fencing token, strictly increasing from one leader to the next. */
  readonly term: number | undefined;
}

/** This process's leadership of an election, won by `campaign`. Resign it, or let `await using` do so. */
export interface Leadership extends AsyncDisposable {
  readonly electionId: string;
  /** Fencing token: strictly increases from one leader to the next, across restarts. Have followers check it. */
  readonly term: number;
  readonly value: string;
  /** Aborted, with a `LeaseLostError` as its reason, as soon as the leadership can no longer be proven. */
  readonly signal: AbortSignal;
  /** Steps down: the next candidate, if any, leads. Idempotent. */
  resign(): Promise<void>;
}

export interface ElectionApi {
  /**
   * Waits until this candidate leads `electionId`, and returns its leadership, which renews until resigned.
   * Candidates lead in the order they campaigned.
   */
  campaign(electionId: string, options?: CampaignOptions): Promise<Leadership>;
  /** Runs `fn` while leading `electionId`, and resigns afterwards; returns what `fn` returns. */
  withLeadership<T>(
    electionId: string,
    fn: (leadership: Leadership) => T | Promise<T>,
    options?: CampaignOptions,
  ): Promise<T>;
  /**
   * Who leads `electionId`: first as it is now, then every change once, in order, until `options.signal` aborts.
   * Read about every quarter of a second.
   */
  observe(electionId: string, options?: ObserveOptions): AsyncIterable<LeaderState>;
  /** Who leads `electionId` now. */
  leader(electionId: string): Promise<LeaderState>;
}

const knownCampaignOptions = new Set(['value', 'ttl', 'waitTimeout', 'signal']);
const knownObserveOptions = new Set(['signal']);
/** How often `observe` asks the election for its changes. */
const OBSERVE_INTERVAL = 250;

export function createElectionApi(context: Context): ElectionApi {
  const elections = new Elections(context);
  return {
    campaign: (electionId, options) => elections.campaign(electionId, options),
    withLeadership: (electionId, fn, options) => elections.withLeadership(electionId, fn, options),
    observe: (electionId, options) => elections.observe(electionId, options),
    leader: (electionId) => elections.leader(electionId),
  };
}

/** An election is a lock of its own (one slot, its own workflow IDs) whose workflow logs its leader changes. */
class Elections {
  private readonly locks: LockClient;
  private readonly telemetry: ElectionTelemetry;

  constructor(private readonly context: Context) {
    this.locks = new LockClient(context, electionIdPrefix(context.idPrefix));
    this.telemetry = new ElectionTelemetry(context.telemetry);
  }

  async campaign(electionId: string, options: CampaignOptions = {}): Promise<Leadership> {
    checkKnownOptions(options, knownCampaignOptions);
    const value = optionalString('value', options.value) ?? `${hostname()}:${process.pid}`;
    const { value: _, ...lockOptions } = options;
    const params = { ...acquireParams(electionId, lockOptions, this.locks.prefix), election: true, value };
    const lease = await this.locks.acquireWith(params);
    this.telemetry.won(electionId);
    return leadership(lease, value);
  }

  async withLeadership<T>(
    electionId: string,
    fn: (leadership: Leadership) => T | Promise<T>,
    options?: CampaignOptions,
  ): Promise<T> {
    if (typeof fn !== 'function') throw new TypeError(`Expected \`fn\` to be a function, got ${typeof fn}`);
    const held = await this.campaign(electionId, options);
    return runThenRelease({ release: () => held.resign() }, () => fn(held));
  }

  /** Checks its arguments at once, not at the first step of the iteration. */
  observe(electionId: string, options: ObserveOptions = {}): AsyncGenerator<LeaderState> {
    checkResourceId('electionId', electionId, this.locks.prefix);
    checkKnownOptions(options, knownObserveOptions);
    return this.changes(electionId, optionalSignal('signal', options.signal));
  }

  private async *changes(electionId: string, signal: AbortSignal | undefined): AsyncGenerator<LeaderState> {
    const observed = this.telemetry.observer(electionId);
    const first = await this.view(electionId, 0);
    let seen: LeaderState = first.current;
    let afterSeq = first.changes.at(-1)?.seq ?? 0;
    observed(seen);
    yield seen;
    while (!signal?.aborted) {
      await sleep(OBSERVE_INTERVAL, undefined, { signal }).catch(() => {});
      if (signal?.aborted) return;
      const { changes, current } = await this.view(electionId, afterSeq);
      // The changes since the last look, then where they led: the latter alone when there is no log to read (the
      // election's workflow exited and a new one has not logged yet).
      for (const state of [...changes, current]) {
        if (seen.term === state.term && seen.leader === state.leader) continue;
        seen = { leader: state.leader, term: state.term };
        observed(seen);
        yield seen;
      }
      afterSeq = changes.at(-1)?.seq ?? afterSeq;
    }
  }

  async leader(electionId: string): Promise<LeaderState> {
    checkResourceId('electionId', electionId, this.locks.prefix);
    return (await this.view(electionId, Number.MAX_SAFE_INTEGER)).current;
  }

  /** The election's changes after `afterSeq` and who leads now; nobody, with no changes, if nobody campaigns. */
  async view(electionId: string, afterSeq: number): Promise<LeadershipView> {
    const handle = this.context.openRuns.getHandle(this.locks.prefix + electionId);
    try {
      const { changes, current } = await handle.query(leadershipQuery, afterSeq);
      // Both fields, whether set or not: JSON drops those that are `undefined`.
      return { changes, current: { leader: current.leader, term: current.term } };
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError || error instanceof QueryRejectedError)) throw error;
      return { changes: [], current: { leader: undefined, term: undefined } };
    }
  }
}

function leadership(lease: Lease, value: string): Leadership {
  return {
    electionId: lease.resourceId,
    term: lease.token,
    value,
    signal: lease.signal,
    resign: () => lease.release(),
    [Symbol.asyncDispose]: () => lease.release(),
  };
}
