// Every signal, query and update our workflows handle, with wire names under our own prefix.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AcquireRequest, Decided, LeadershipView, LockStatus, Notification, RequestState } from './lock-core.js';

// ---- Locks and semaphores ----

/** Queue a request for a slot. Sent with signal-with-start, so the first request creates the workflow. */
export const acquireSignal = defineSignal<[AcquireRequest]>('temporal-coordination.lock.acquire');
/** Free a held slot; ignored unless the request ID and token match the current grant. */
export const releaseSignal = defineSignal<[{ requestId: string; token: number }]>('temporal-coordination.lock.release');
/** Take a request back: dequeued if waiting, released if granted meanwhile. */
export const withdrawSignal = defineSignal<[{ requestId: string }]>('temporal-coordination.lock.withdraw');
/** Blocks until the request is granted (or a time limit passes); only for waiters near the head of the queue. */
export const awaitGrantUpdate = defineUpdate<RequestState, [requestId: string]>(
  'temporal-coordination.lock.awaitGrant',
);
/**
 * Grants the request at once if a slot is free and nobody waits, else refuses it (`unknown`): it never joins the queue.
 * Sent with update-with-start, so a free resource answers in one round trip.
 */
export const tryAcquireUpdate = defineUpdate<Decided, [AcquireRequest]>('temporal-coordination.lock.tryAcquire');
/** Extends a lease by its ttl; the first renewal claims the grant. Returns the new expiry in ms from now. */
export const renewUpdate = defineUpdate<number, [{ requestId: string; token: number }]>(
  'temporal-coordination.lock.renew',
);
/** Where each of a batch of requests stands; answered from the worker's cache with no history cost. */
export const requestStatesQuery = defineQuery<RequestState[], [requestIds: string[]]>(
  'temporal-coordination.lock.requestStates',
);
/** An operator frees the slot held with `token` (recorded with `reason`); the holder's next renewal fails. */
export const forceReleaseUpdate = defineUpdate<{ released: boolean }, [{ token: number; reason: string }]>(
  'temporal-coordination.lock.forceRelease',
);
export const lockStatusQuery = defineQuery<LockStatus>('temporal-coordination.lock.status');
/**
 * Sent by a lock workflow to a workflow that requested a slot from workflow code (`notify` in its request): the
 * request's grant or rejection. Handled by `withLock` from `temporal-coordination/workflows`.
 */
export const acquireAnswerSignal = defineSignal<[Pick<Notification, 'requestId' | 'answer'>]>(
  'temporal-coordination.lock.answer',
);

/** An election's leader changes after the given number, and who leads now (see `LockCore.leadershipView`). */
export const leadershipQuery = defineQuery<LeadershipView, [afterSeq: number]>(
  'temporal-coordination.election.leadership',
);

// ---- Per-key job queues ----
import type { CancelRequest, EnqueueRequest, JobView, QueueStatus } from './queue-core.js';

/** Append a job to the key's queue. Sent with signal-with-start; a job ID the queue already knows is ignored. */
export const enqueueSignal = defineSignal<[EnqueueRequest]>('temporal-coordination.queue.enqueue');
/**
 * Cancel one job: a pending job is dropped, a running one's handler is told to stop. Read the job's state afterwards
 * (`jobStatesQuery`) to learn what the cancel found.
 */
export const cancelJobSignal = defineSignal<[CancelRequest]>('temporal-coordination.queue.cancel');
/** Stop starting jobs (running ones finish); the queue workflow stays up while paused. */
export const pauseSignal = defineSignal('temporal-coordination.queue.pause');
/** Start jobs again, in order. */
export const resumeSignal = defineSignal('temporal-coordination.queue.resume');
/**
 * Where each of the given jobs stands (pending, running, or its outcome while retained), in the same order. Waiting
 * `job.result()` calls of one process share one such query per key.
 */
export const jobStatesQuery = defineQuery<JobView[], [jobIds: string[]]>('temporal-coordination.queue.jobStates');
export const queueStatusQuery = defineQuery<QueueStatus>('temporal-coordination.queue.status');
