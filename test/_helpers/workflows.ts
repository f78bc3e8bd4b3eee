// Test workflows that lock and enqueue from workflow code, bundled with the coordination workflows (the tests bundle
// this file themselves, as a user's worker bundles theirs).
import { ApplicationFailure, proxyActivities, sleep } from '@temporalio/workflow';
import {
  enqueue,
  tryWithLock,
  withLeadership,
  withLock,
  withLocks,
  withReadLock,
  withWriteLock,
} from '../../lib/workflows/index.js';

export * from '../../lib/workflows/index.js';

/** What the critical sections report, in the order it happens, to the test process. */
export interface SectionEvent {
  readonly kind: 'enter' | 'exit';
  readonly who: string;
  readonly token: number;
}

export interface TestActivities {
  record(event: SectionEvent): Promise<void>;
}

const { record } = proxyActivities<TestActivities>({ startToCloseTimeout: '10s' });

export interface LockingInput {
  readonly resourceId: string;
  readonly who: string;
  /** How long the section holds the lock, in ms. */
  readonly hold: number;
  readonly taskQueue: string;
  readonly ttl?: number;
  readonly waitTimeout?: number;
  /** Throw from the section after its exit is recorded. */
  readonly fail?: boolean;
}

/** A critical section: records its enter, holds for `hold` ms, records its exit; returns `token`. */
async function section(who: string, hold: number, token: number): Promise<number> {
  await record({ kind: 'enter', who, token });
  await sleep(hold);
  await record({ kind: 'exit', who, token });
  return token;
}

/** Holds `resourceId` for `hold` ms, recording when it enters and leaves; returns its fencing token. */
export async function lockingWorkflow(input: LockingInput): Promise<number> {
  const { resourceId, who, hold, taskQueue, ttl, waitTimeout, fail } = input;
  return withLock(
    resourceId,
    async (lease) => {
      await record({ kind: 'enter', who, token: lease.token });
      await sleep(hold);
      await record({ kind: 'exit', who, token: lease.token });
      if (fail) throw ApplicationFailure.nonRetryable('the section failed', 'SectionFailed');
      return lease.token;
    },
    { taskQueue, ...(ttl === undefined ? {} : { ttl }), ...(waitTimeout === undefined ? {} : { waitTimeout }) },
  );
}

/** `lockingWorkflow` with `tryWithLock`: holds `resourceId` only if it is free; returns the token, if it got one. */
export async function tryLockingWorkflow(input: LockingInput): Promise<number | undefined> {
  const { resourceId, who, hold, taskQueue } = input;
  const result = await tryWithLock(resourceId, (lease) => section(who, hold, lease.token), { taskQueue });
  return result.acquired ? result.value : undefined;
}

/** `lockingWorkflow` on a read-write lock, reading or writing as `mode` says; returns its token. */
export async function readWriteWorkflow(input: LockingInput & { readonly mode: 'read' | 'write' }): Promise<number> {
  const { resourceId, who, hold, taskQueue, mode } = input;
  return (mode === 'read' ? withReadLock : withWriteLock)(resourceId, (lease) => section(who, hold, lease.token), {
    taskQueue,
  });
}

export interface LeadingInput {
  readonly electionId: string;
  readonly who: string;
  /** How long it leads, in ms. */
  readonly hold: number;
  readonly taskQueue: string;
}

/** Leads `electionId` for `hold` ms with `withLeadership` (its value: `who`), recording it; returns its term. */
export async function leadingWorkflow({ electionId, who, hold, taskQueue }: LeadingInput): Promise<number> {
  return withLeadership(electionId, ({ term }) => section(who, hold, term), { taskQueue, value: who });
}

export interface LockingSetInput {
  readonly resourceIds: readonly string[];
  readonly who: string;
  /** How long the section holds the locks, in ms. */
  readonly hold: number;
  readonly taskQueue: string;
  readonly waitTimeout?: number;
}

/**
 * Holds every lock of `resourceIds` for `hold` ms with `withLocks`, recording when it enters and leaves (with the token
 * of the first lock held); returns the tokens by resource ID.
 */
export async function lockingSetWorkflow(input: LockingSetInput): Promise<Record<string, number>> {
  const { resourceIds, who, hold, taskQueue, waitTimeout } = input;
  return withLocks(
    resourceIds,
    async (leases) => {
      const tokens = Object.fromEntries([...leases].map(([resourceId, lease]) => [resourceId, lease.token]));
      const token = [...leases.values()][0]!.token;
      await record({ kind: 'enter', who, token });
      await sleep(hold);
      await record({ kind: 'exit', who, token });
      return tokens;
    },
    { taskQueue, ...(waitTimeout === undefined ? {} : { waitTimeout }) },
  );
}

export interface EnqueueingInput {
  readonly key: string;
  readonly taskQueue: string;
  /** One job per entry, enqueued one after the other: its label, and a job ID if it should have one. */
  readonly jobs: readonly { readonly label: string; readonly jobId?: string }[];
  /** The job name. @default 'note' */
  readonly name?: string;
  /** Send every enqueue at once, awaiting them together, instead of one after the other. */
  readonly unawaited?: boolean;
}

/** Enqueues `note(key, label)` jobs in order; returns their job IDs. */
export async function enqueueingWorkflow({
  key,
  taskQueue,
  jobs,
  name = 'note',
  unawaited = false,
}: EnqueueingInput): Promise<string[]> {
  if (unawaited) {
    const sent = jobs.map(({ label }) => enqueue(key, name, [key, label], { taskQueue }));
    return (await Promise.all(sent)).map((job) => job.id);
  }
  const ids: string[] = [];
  for (const { label, jobId } of jobs) {
    const job = await enqueue(key, name, [key, label], { taskQueue, ...(jobId ? { jobId } : {}) });
    ids.push(job.id);
  }
  return ids;
}
