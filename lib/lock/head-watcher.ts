import type { WorkflowClient } from '@temporalio/client';
import { BLOCKING_UP_TO_MEMO } from '../workflows/lock-protocol.js';

/** A describe of a lock workflow is short: a slower one gives way to a query, which knows how to wait for a server. */
const READ_TIMEOUT = 2_000;
/** Bounds of the delay between two looks at the published head of the queue. */
const MIN_LOOK_DELAY = 20;
const MAX_LOOK_DELAY = 2_000;

interface FarBackWaiter {
  readonly ticket: number;
  readonly slots: number;
  /** When this waiter wants the next look (ms since epoch). */
  lookAt: number;
  resolve(mayBlock: boolean): void;
}

/**
 * When to look again at a waiter `position` places from the head: when it should just have come within the head
 * slots if hand-offs went twice as fast as lately, with jitter. A look that comes early costs one more describe; one
 * that comes late, after the waiter was granted, holds every waiter behind it up until then.
 */
function lookDelay(position: number, slots: number, handoffEstimate: number): number {
  const handOffs = position - (slots - 1);
  return (
    Math.min(MAX_LOOK_DELAY, Math.max(MIN_LOOK_DELAY, (handOffs * Math.max(handoffEstimate, 5)) / 2)) *
    (0.8 + Math.random() / 5)
  );
}

/**
 * Watches, for the far-back waiters of one resource in this process (those past the head slots), the ticket of the
 * last waiter that may block in an update, which the lock workflow publishes in its memo. A describe reads it: the
 * server answers that alone (no workflow task, no query buffer), where a query needs the workflow's worker and a busy
 * workflow turns most queries away (the server buffers one). One describe at a time per process and resource, timed
 * for the waiter nearest the head.
 */
export class HeadWatcher {
  private readonly waiters = new Set<FarBackWaiter>();
  private handoffEstimate = 0;
  /**
   * Time per ticket by which the published head moved between two looks in a row of this watcher, from the latest
   * such pair in which it moved. The workflow's estimate is a moving average that one long stall inflates for many
   * grants after it; this one follows the pace of the queue now.
   */
  private observedPace: number | undefined;
  private lastSeen: { readonly at: number; readonly blockingUpTo: number } | undefined;
  private timer: { readonly handle: NodeJS.Timeout; readonly at: number } | undefined;
  private looking = false;
  /** The run that published the last value seen; another run may number its waiters differently. */
  private runId: string | undefined;

  constructor(
    private readonly client: WorkflowClient,
    private readonly workflowId: string,
    private readonly onIdle: () => void,
  ) {}

  /**
   * Resolves `true` once the waiter with `ticket`, now at `position`, may block; `false` when it should look at its
   * own state with a query instead (no value published, a new run, or the workflow could not be described).
   */
  mayBlock(
    waiter: {
      readonly ticket: number;
      readonly position: number;
      readonly slots: number;
      readonly handoffEstimate: number;
    },
    signal: AbortSignal,
  ): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      this.handoffEstimate = waiter.handoffEstimate;
      const onAbort = () => {
        this.waiters.delete(entry);
        reject(signal.reason);
        this.idleCheck();
      };
      const entry: FarBackWaiter = {
        ticket: waiter.ticket,
        slots: waiter.slots,
        lookAt: Date.now() + lookDelay(waiter.position, waiter.slots, this.pace()),
        resolve: (mayBlock) => {
          signal.removeEventListener('abort', onAbort);
          this.waiters.delete(entry);
          resolve(mayBlock);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(entry);
      this.schedule();
    });
  }

  /** The time per hand-off to time looks by: the workflow's estimate, unless the queue was seen to move faster. */
  private pace(): number {
    return Math.min(this.handoffEstimate, this.observedPace ?? Infinity);
  }

  private schedule(): void {
    if (this.looking || this.waiters.size === 0) return;
    let at = Infinity;
    for (const waiter of this.waiters) at = Math.min(at, waiter.lookAt);
    if (this.timer && this.timer.at <= at) return;
    clearTimeout(this.timer?.handle);
    this.timer = { handle: setTimeout(() => void this.look(), Math.max(0, at - Date.now())), at };
  }

  private idleCheck(): void {
    if (this.waiters.size > 0 || this.looking) return;
    clearTimeout(this.timer?.handle);
    this.timer = undefined;
    this.onIdle();
  }

  private async look(): Promise<void> {
    this.timer = undefined;
    this.looking = true;
    const seen = await this.read();
    this.looking = false;
    const newRun = seen !== undefined && this.runId !== undefined && seen.runId !== this.runId;
    this.runId = seen?.runId;
    // Another run's tickets, and its pace, are not comparable with this one's.
    const current = newRun ? undefined : seen;
    const now = Date.now();
    this.observe(current, now);
    for (const waiter of [...this.waiters]) {
      if (current === undefined) waiter.resolve(false);
      else if (waiter.ticket <= current.blockingUpTo) waiter.resolve(true);
      // At most this far back: waiters ahead may have left since.
      else
        waiter.lookAt =
          now + lookDelay(waiter.slots - 1 + waiter.ticket - current.blockingUpTo, waiter.slots, this.pace());
    }
    this.schedule();
    this.idleCheck();
  }

  /** Keeps the pace at which the published head moved between this look and the one before (see `observedPace`). */
  private observe(seen: { readonly blockingUpTo: number } | undefined, now: number): void {
    if (seen === undefined) {
      this.lastSeen = undefined;
      this.observedPace = undefined;
      return;
    }
    if (this.lastSeen !== undefined && seen.blockingUpTo > this.lastSeen.blockingUpTo) {
      this.observedPace = (now - this.lastSeen.at) / (seen.blockingUpTo - this.lastSeen.blockingUpTo);
    }
    this.lastSeen = { at: now, blockingUpTo: seen.blockingUpTo };
  }

  private async read(): Promise<{ runId: string; blockingUpTo: number } | undefined> {
    try {
      const { status, runId, memo } = await this.client.connection.withDeadline(Date.now() + READ_TIMEOUT, () =>
        this.client.getHandle(this.workflowId).describe(),
      );
      const blockingUpTo = memo?.[BLOCKING_UP_TO_MEMO];
      return status.name === 'RUNNING' && typeof blockingUpTo === 'number' ? { runId, blockingUpTo } : undefined;
    } catch {
      return undefined;
    }
  }
}
